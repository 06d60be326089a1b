/**
 * exec's library as plain units (no Docker, no sshd): input checks, the state read's parsing, the refusals
 * made on a host, the argv (the user's text only ever the one argument of `sh -c`), output capping and
 * masking. The host-side scripts run for real through a local Remote (src/testkit/local-remote.ts) in temp
 * folders; a Remote that refuses to connect stands for an unreachable host.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isUserError } from '../../src/lib/errors.js'
import { layout } from '../../src/lib/compose/layout.js'
import {
  capOutput,
  checkCommand,
  checkService,
  execOnHosts,
  execSummary,
  resultsJson,
  type ExecOptions
} from '../../src/lib/exec/index.js'
import { headTail, LineSplitter } from '../../src/lib/exec/output.js'
import { envSecrets, killArgv, parseRead, planHost, runArgv, stateArgv } from '../../src/lib/exec/plan.js'
import { EXEC_SCRIPT } from '../../src/lib/exec/scripts.js'
import { Redactor } from '../../src/lib/redact.js'
import type { ReleaseMeta } from '../../src/lib/release/store.js'
import { localRemote } from '../../src/testkit/local-remote.js'
import type { Remote } from '../../src/lib/ssh/remote.js'

const ID = '20261201T093512345Z-v1'
const meta = (over: Partial<ReleaseMeta> = {}): ReleaseMeta => ({
  id: ID,
  version: 'v1',
  time: '2026-12-01T09:35:12Z',
  files: ['docker-compose.yml', 'shipline.override.yml'],
  env: true,
  images: {},
  services: ['web', 'worker'],
  updated: ['web', 'worker'],
  ...over
})

const refusal = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    expect(isUserError(e)).toBe(true)
    return (e as Error).message
  }
  throw new Error('expected a refusal')
}

describe('input checks', () => {
  it('command: required, kept as written, bounded', () => {
    expect(refusal(() => checkCommand('  \n '))).toMatch(/^Input 'command' is required: the shell command/)
    expect(checkCommand('  echo hi\n  echo there  ')).toBe('echo hi\n  echo there')
    expect(refusal(() => checkCommand('x'.repeat(70_000)))).toMatch(/^Input 'command' is 70000 bytes/)
  })

  it('service: empty is the host, else a Compose service name', () => {
    expect(checkService('')).toBeUndefined()
    expect(checkService(' web ')).toBe('web')
    for (const bad of ['Web App', 'web;id', '-x', '$(id)'])
      expect(refusal(() => checkService(bad))).toMatch(/^Input 'service': .* is not a Compose service name/)
  })

  it('execOnHosts refuses bad options before connecting anything', async () => {
    let connects = 0
    const base: ExecOptions = {
      hosts: ['h1'],
      connect: async () => {
        connects++
        throw new Error('no')
      },
      path: '/srv/app',
      command: 'true',
      timeoutSec: 5,
      maxParallel: 1,
      outputLimit: 1000,
      log: { info: () => undefined, warning: () => undefined }
    }
    for (const [change, want] of [
      [{ command: '' }, /Input 'command' is required/],
      [{ service: 'a b' }, /Input 'service'/],
      [{ path: 'relative' }, /Input 'path' must be absolute/],
      [{ path: '/etc' }, /system directory/],
      [{ hosts: [] }, /Input 'hosts' is empty/],
      [{ timeoutSec: 0 }, /Input 'timeout'/],
      [{ outputLimit: 0 }, /Input 'output-limit'/]
    ] as [Partial<ExecOptions>, RegExp][]) {
      await expect(execOnHosts({ ...base, ...change })).rejects.toThrow(want)
    }
    expect(connects).toBe(0)
  })
})

describe('the state read and the refusals on a host', () => {
  const lay = layout('/srv/app')
  const out = (lines: string[]): string => [...lines, 'END', ''].join('\n')

  it('parses what the script prints', () => {
    const r = parseRead(
      'h',
      out([
        'path ok',
        'compose v1',
        `current ${ID}`,
        `release ${JSON.stringify(meta())}`,
        'busy someone run 7'
      ]),
      0
    )
    expect(r).toEqual({
      pathExists: true,
      compose: 'v1',
      current: ID,
      release: meta(),
      busy: 'someone run 7'
    })
    expect(parseRead('h', out(['path missing']), 0)).toEqual({ pathExists: false, current: '' })
    // a release.json that is not the current one's, or damaged, does not count
    expect(parseRead('h', out(['path ok', `current ${ID}`, 'release {"id": 3']), 0).release).toBeUndefined()
    expect(
      refusal(() => parseRead('h', 'path ok\nERR /srv/app/.shipline is a symbolic link: remove it\n', 76))
    ).toBe('h: /srv/app/.shipline is a symbolic link: remove it')
    expect(refusal(() => parseRead('h', 'path ok\n', 2))).toMatch(
      /^h: reading the release state failed \(exit 2\)/
    )
  })

  it('in a service container: a current release that defines the service, and Compose', () => {
    const read = { pathExists: true, compose: 'v2' as const, current: ID, release: meta() }
    const plan = planHost('h', lay, read, 'web')
    expect(plan).toEqual({
      service: 'web',
      release: meta(),
      compose: 'v2',
      env: { SHIPLINE_HOST: 'h', SHIPLINE_PATH: '/srv/app', SHIPLINE_RELEASE_ID: ID, SHIPLINE_VERSION: 'v1' }
    })
    expect(refusal(() => planHost('h', lay, { ...read, current: '', release: undefined }, 'web'))).toBe(
      "h: no current release under /srv/app: deploy one first (deploy-ssh), or leave 'service' empty to run the command on the host."
    )
    expect(refusal(() => planHost('h', lay, { ...read, release: undefined }, 'web'))).toMatch(
      /names release .* whose folder or release.json is missing or damaged/
    )
    expect(refusal(() => planHost('h', lay, read, 'db'))).toBe(
      `h: release v1 (${ID}) does not define service 'db'. Known: web, worker. Check 'service'.`
    )
    expect(refusal(() => planHost('h', lay, { ...read, compose: 'none' }, 'web'))).toMatch(
      /neither 'docker compose' \(v2\) nor 'docker-compose' \(v1\)/
    )
    expect(refusal(() => planHost('h', lay, { ...read, pathExists: false }, 'web'))).toMatch(
      /^h: \/srv\/app does not exist on the host/
    )
  })

  it('on the host: in the release folder, else in path', () => {
    const read = { pathExists: true, current: ID, release: meta() }
    expect(planHost('h', lay, read, undefined)).toMatchObject({
      cwd: lay.release(ID),
      env: { SHIPLINE_RELEASE_ID: ID, SHIPLINE_VERSION: 'v1' }
    })
    const none = planHost('h', lay, { pathExists: true, current: '' }, undefined)
    expect(none).toEqual({
      release: undefined,
      cwd: '/srv/app',
      env: { SHIPLINE_HOST: 'h', SHIPLINE_PATH: '/srv/app' }
    })
  })
})

describe('argv', () => {
  const lay = layout('/srv/app')
  const evil = `echo "$(id)"; rm -rf / # ' \\`

  it('in a service container: compose exec of the release files, the command as the one sh -c argument', () => {
    const plan = planHost('h', lay, { pathExists: true, compose: 'v1', current: ID, release: meta() }, 'web')
    const argv = runArgv({ lay, plan, command: evil, mark: '@@m', hostCap: 99, token: 'tok' })
    expect(argv.slice(0, 2)).toEqual(['sh', '-c'])
    expect(argv[2]).toBe(EXEC_SCRIPT)
    const dir = lay.release(ID)
    expect(argv.slice(3)).toEqual([
      'sh',
      '@@m',
      '99',
      '',
      lay.project,
      'web',
      'env',
      'PYTHONUNBUFFERED=1',
      'docker-compose',
      '--project-name',
      lay.project,
      '--project-directory',
      dir,
      '--file',
      `${dir}/docker-compose.yml`,
      '--file',
      `${dir}/shipline.override.yml`,
      '--env-file',
      `${dir}/.env`,
      'exec',
      '-T',
      '-e',
      'SHIPLINE_HOST=h',
      '-e',
      'SHIPLINE_PATH=/srv/app',
      '-e',
      `SHIPLINE_RELEASE_ID=${ID}`,
      '-e',
      'SHIPLINE_VERSION=v1',
      '-e',
      'SHIPLINE_EXEC_TOKEN=tok',
      'web',
      'sh',
      '-c',
      evil
    ])
    expect(argv.filter(a => a.includes(evil))).toEqual([evil])
    const v2 = runArgv({
      lay,
      plan: { ...plan, compose: 'v2' },
      command: 'x',
      mark: 'm',
      hostCap: 1,
      token: 't'
    })
    expect(v2.slice(9, 11)).toEqual(['docker', 'compose'])
    expect(killArgv(lay, plan, 'tok').slice(-8, -5)).toEqual(['exec', '-T', 'web'])
    expect(killArgv(lay, plan, 'tok').at(-1)).toBe('tok')
  })

  it('on the host: env SHIPLINE_…=… sh -c COMMAND in the folder', () => {
    const plan = planHost('h', lay, { pathExists: true, current: '' }, undefined)
    const argv = runArgv({ lay, plan, command: evil, mark: 'm', hostCap: 5, token: 't' })
    expect(argv.slice(3)).toEqual([
      'sh',
      'm',
      '5',
      '/srv/app',
      '',
      '',
      'env',
      'SHIPLINE_HOST=h',
      'SHIPLINE_PATH=/srv/app',
      'sh',
      '-c',
      evil
    ])
    expect(stateArgv('/srv/app', true).slice(-2)).toEqual(['/srv/app', '1'])
  })
})

describe('output', () => {
  it('is kept whole when it fits, else its first and last halves around the bytes left out', () => {
    expect(capOutput('hello\n', 100)).toEqual({ text: 'hello\n', bytes: 6, truncated: false })
    const text = 'a'.repeat(500) + 'b'.repeat(500)
    const c = capOutput(text, 100)
    expect(c.truncated).toBe(true)
    expect(c.bytes).toBe(1000)
    expect(c.text).toBe(`${'a'.repeat(50)}\n[… 900 bytes left out …]\n${'b'.repeat(50)}`)
    // never inside a multi-byte character
    const u = capOutput('é'.repeat(100), 11)
    expect(u.text).not.toContain('\uFFFD')
    // a stream that reached the host's cap says so
    expect(capOutput('x'.repeat(20), 100, 20).text).toMatch(/output beyond 20 bytes was dropped on the host/)
  })

  it('first and last lines; lines split from chunks', () => {
    expect(headTail('')).toEqual({ first: [], last: [], lines: 0 })
    expect(headTail('1\n2\n3\n', 2)).toEqual({ first: ['1', '2', '3'], last: [], lines: 3 })
    expect(headTail('1\n2\n3\n4\n5\n', 2)).toEqual({ first: ['1', '2'], last: ['4', '5'], lines: 5 })
    const lines: string[] = []
    const s = new LineSplitter(l => lines.push(l), 4)
    s.write('ab\r\ncd')
    s.write('efghij\n')
    s.write('tail')
    s.end()
    expect(lines).toEqual(['ab', 'cdef', 'ghij', 'tail'])
  })

  it('the values of a .env worth masking', () => {
    expect(
      envSecrets(
        'A=short\nexport DB_URL="postgres://u:p@db/x"\n# c=commented-out\nTOKEN=\'tok-123456\'\nB=12345'
      )
    ).toEqual(['postgres://u:p@db/x', 'tok-123456'])
  })
})

describe('the host-side script, run for real through a local Remote', () => {
  let root: string
  const log = (): { lines: string[]; info(m: string): void; warning(m: string): void } => {
    const lines: string[] = []
    return { lines, info: m => void lines.push(m), warning: m => void lines.push(`WARN ${m}`) }
  }
  const opts = (path: string, over: Partial<ExecOptions> = {}): ExecOptions => ({
    hosts: ['local'],
    connect: async () => localRemote('local'),
    path,
    command: 'true',
    timeoutSec: 20,
    maxParallel: 2,
    outputLimit: 1000,
    log: log(),
    ...over
  })
  /** a project path with a current release (release.json, .env) like a deploy leaves it */
  const withRelease = (name: string, env = 'APP_SECRET=s3cret-value-42\n'): string => {
    const path = join(root, name)
    const dir = join(path, '.shipline', 'releases', ID)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'release.json'), JSON.stringify(meta()) + '\n')
    writeFileSync(join(dir, '.env'), env, { mode: 0o600 })
    symlinkSync(`releases/${ID}`, join(path, '.shipline', 'current'))
    return path
  }

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'shipline-exec-unit-'))
  })
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('runs in the release folder with the SHIPLINE variables; exit codes and both streams come back', async () => {
    const path = withRelease('a')
    const l = log()
    const r = await execOnHosts(
      opts(path, {
        log: l,
        command: 'pwd; echo "$SHIPLINE_HOST $SHIPLINE_RELEASE_ID $SHIPLINE_VERSION"; echo oops >&2; exit 3'
      })
    )
    expect(r.failed).toEqual(['local'])
    expect(r.hosts[0]).toMatchObject({
      host: 'local',
      ok: false,
      exitCode: 3,
      timedOut: false,
      stdout: `${layout(path).release(ID)}\nlocal ${ID} v1\n`,
      stderr: 'oops\n',
      releaseId: ID,
      version: 'v1'
    })
    expect(r.hosts[0].error).toBeUndefined()
    expect(l.lines).toEqual(
      expect.arrayContaining([`[local] local ${ID} v1`, '[local stderr] oops', 'local: exit 3'])
    )
    const json = JSON.parse(resultsJson(r))
    expect(json[0]).toMatchObject({
      host: 'local',
      'exit-code': 3,
      stdout: expect.any(String),
      stderr: 'oops\n'
    })
  })

  it('without a release: in path, no release variables; a missing path is refused before running', async () => {
    const path = join(root, 'bare')
    mkdirSync(path)
    const r = await execOnHosts(opts(path, { command: 'pwd; echo "[$SHIPLINE_RELEASE_ID]"' }))
    expect(r.hosts[0]).toMatchObject({ ok: true, exitCode: 0, stdout: `${path}\n[]\n` })
    const marker = join(root, 'ran')
    const gone = await execOnHosts(opts(join(root, 'nope'), { command: `touch ${marker}` }))
    expect(gone.hosts[0]).toMatchObject({ ok: false, exitCode: null })
    expect(gone.hosts[0].error).toMatch(/nope does not exist on the host\. Check 'path'/)
    expect(spawnSync('test', ['-e', marker]).status).toBe(1)
    // and in a service container, no current release is refused before anything runs
    const svc = await execOnHosts(opts(path, { service: 'web', command: `touch ${marker}` }))
    expect(svc.hosts[0].error).toMatch(/^no current release under .*bare: deploy one first/)
    expect(spawnSync('test', ['-e', marker]).status).toBe(1)
    const unknown = await execOnHosts(opts(withRelease('u'), { service: 'db', command: `touch ${marker}` }))
    expect(unknown.hosts[0].error).toMatch(/does not define service 'db'\. Known: web, worker/)
    expect(spawnSync('test', ['-e', marker]).status).toBe(1)
  })

  it('caps the output kept, the host caps what it sends, and the command is not stopped by it', async () => {
    const path = withRelease('c')
    const r = await execOnHosts(
      opts(path, {
        command:
          'i=0; while [ $i -lt 3000 ]; do echo "line $i of some output"; i=$((i+1)); done; echo done >&2',
        outputLimit: 2000,
        streamLog: false
      })
    )
    const h = r.hosts[0]
    expect(h).toMatchObject({ ok: true, exitCode: 0, truncated: true, stderr: 'done\n' })
    expect(h.stdout).toMatch(/^line 0 of some output\n/)
    expect(h.stdout).toMatch(/\[… \d+ bytes left out …\]/)
    expect(h.stdout).toMatch(/line 2999 of some output\n$/)
    expect(Buffer.byteLength(h.stdout)).toBeLessThan(2100)
    const small = await execOnHosts(
      opts(path, {
        command: 'head -c 200000 /dev/zero | tr "\\0" y; echo; exit 4',
        hostCapBytes: 5000,
        streamLog: false
      })
    )
    expect(small.hosts[0]).toMatchObject({ exitCode: 4, truncated: true })
    expect(small.hosts[0].stdout).toMatch(/output beyond 5000 bytes was dropped on the host/)
  })

  it("masks the release's .env values and the caller's secrets in what it keeps and logs", async () => {
    const path = withRelease('m', 'APP_SECRET=s3cret-value-42\nSHORT=abc\n')
    const red = new Redactor().add('ssh-pass-0123')
    const l = log()
    const r = await execOnHosts(
      opts(path, {
        log: l,
        command: 'cat .env; echo ssh-pass-0123 >&2',
        addSecret: v => void red.add(v),
        redact: t => red.redact(t)
      })
    )
    expect(r.hosts[0].stdout).toBe('APP_SECRET=***\nSHORT=abc\n')
    expect(r.hosts[0].stderr).toBe('***\n')
    expect(l.lines.join('\n')).not.toMatch(/s3cret-value-42|ssh-pass-0123/)
  })

  it('an unreachable host fails with its reason, the others still run', async () => {
    const path = withRelease('u2')
    const r = await execOnHosts(
      opts(path, {
        hosts: ['down', 'local'],
        connect: async (h: string): Promise<Remote> => {
          if (h === 'down') throw new Error('connect ECONNREFUSED 127.0.0.1:1')
          return localRemote(h)
        },
        command: 'echo ran'
      })
    )
    expect(r.failed).toEqual(['down'])
    expect(r.hosts[0]).toMatchObject({
      host: 'down',
      ok: false,
      exitCode: null,
      error: 'cannot connect: connect ECONNREFUSED 127.0.0.1:1'
    })
    expect(r.hosts[1]).toMatchObject({ host: 'local', ok: true, exitCode: 0, stdout: 'ran\n' })
    const md = execSummary(r, { command: 'echo ran', path })
    expect(md).toMatch(/^### exec: failed on 1 of 2 hosts/)
    expect(md).toContain('| down | — |')
    expect(md).toContain('cannot connect: connect ECONNREFUSED 127.0.0.1:1')
    expect(md).toMatch(/<details><summary>local: output<\/summary>/)
  })

  it('the summary escapes output and shows first and last lines', () => {
    const md = execSummary(
      {
        hosts: [
          {
            host: 'h',
            ok: true,
            exitCode: 0,
            timedOut: false,
            stdout: Array.from({ length: 20 }, (_, i) => `<b>${i}</b>`).join('\n') + '\n',
            stderr: '',
            truncated: false,
            durationMs: 1234,
            version: 'v1'
          }
        ],
        failed: []
      },
      { command: 'x | y', service: 'web', path: '/srv/app' }
    )
    expect(md).toMatch(/^### exec: ok on 1 host\n/)
    expect(md).toContain('| h | 0 | 1.2s | v1 | ok |')
    expect(md).toContain('&lt;b&gt;0&lt;/b&gt;')
    expect(md).toContain('… 10 more line(s) …')
    expect(md).toContain('&lt;b&gt;19&lt;/b&gt;')
    expect(md).not.toContain('<b>')
    expect(md).toContain('<code>x \\| y</code>')
  })
})

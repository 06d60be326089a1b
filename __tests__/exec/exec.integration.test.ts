/**
 * exec on real parts: two real sshd on loopback ports (one client key authorized by both, host keys pinned
 * through known_hosts) acting as two hosts of the same machine, the real Docker engine with docker-compose
 * v1, and a release deployed first by the library's deploy() (the busybox sample app, built here; no image
 * is pulled). Both "hosts" share the project path, so they see the same release and the same container.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { projectName } from '../../src/lib/compose/layout.js'
import { deploy } from '../../src/lib/deploy/index.js'
import { execOnHosts, hostConnector, type ExecOptions } from '../../src/lib/exec/index.js'
import { Redactor } from '../../src/lib/redact.js'
import { ReleaseStore } from '../../src/lib/release/store.js'
import { connectSsh } from '../../src/lib/ssh/client.js'
import { buildAppImage, removeImages } from '../../src/testkit/images.js'
import { freePort, uniqueName } from '../../src/testkit/net.js'
import { generateClientKey, startSshd, type KeyPair, type Sshd } from '../../src/testkit/sshd.js'

let a: Sshd
let b: Sshd
let key: KeyPair
let root: string
let path: string
let bare: string
let tag: string
let secret: string
const label = (s: Sshd): string => `${s.user}@${s.host}:${s.port}`

const log = (): { lines: string[]; info(m: string): void; warning(m: string): void } => {
  const lines: string[] = []
  return { lines, info: m => void lines.push(m), warning: m => void lines.push(`WARN ${m}`) }
}

/** exec options over the real SSH transport, hosts A (and B when asked) */
function opts(over: Partial<ExecOptions> & { both?: boolean; extraHost?: string } = {}): ExecOptions {
  const targets = [a, ...(over.both ? [b] : [])].map(s => ({ host: s.host, port: s.port, user: s.user }))
  if (over.extraHost) targets.push({ host: '127.0.0.1', port: Number(over.extraHost), user: 'root' })
  const { connect, hosts } = hostConnector(targets, {
    privateKey: key.privateKey,
    knownHosts: [a.knownHostsLine, b.knownHostsLine].join('\n'),
    readyTimeoutMs: 10_000
  })
  return {
    hosts,
    connect,
    path,
    service: 'web',
    command: 'true',
    timeoutSec: 60,
    maxParallel: 4,
    outputLimit: 65536,
    log: log(),
    ...over
  }
}

const containerId = (): string =>
  execFileSync(
    'docker',
    [
      'ps',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${projectName(path)}`,
      '--filter',
      'label=com.docker.compose.service=web'
    ],
    { encoding: 'utf8' }
  ).trim()

function removeProject(p: string): void {
  const project = projectName(p)
  const ids = execFileSync(
    'docker',
    ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`],
    {
      encoding: 'utf8'
    }
  )
    .split('\n')
    .filter(Boolean)
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' })
  try {
    execFileSync('docker', ['network', 'rm', `${project}_default`], { stdio: 'ignore' })
  } catch {
    /* none */
  }
}

beforeAll(async () => {
  key = generateClientKey()
  ;[a, b] = await Promise.all([
    startSshd({ authorizedKeys: [key.publicKey] }),
    startSshd({ authorizedKeys: [key.publicKey] })
  ])
  root = mkdtempSync(join(tmpdir(), 'shipline-exec-'))
  path = join(root, uniqueName('app').toLowerCase())
  bare = join(root, 'bare')
  mkdirSync(bare)
  tag = `${uniqueName('shipline-exec').toLowerCase()}:v1`
  buildAppImage({ tag, version: 'v1' })
  const compose = join(root, 'docker-compose.yml')
  writeFileSync(
    compose,
    [
      'version: "3.8"',
      'services:',
      '  web:',
      `    image: ${tag}`,
      '    init: true',
      '    stop_grace_period: 1s',
      '    environment:',
      '      APP_SECRET: ${APP_SECRET:-}',
      ''
    ].join('\n')
  )
  secret = `exec-secret-${uniqueName('s')}`
  const r = await deploy({
    hosts: [label(a)],
    connect: () =>
      connectSsh({
        target: { host: a.host, port: a.port, user: a.user },
        privateKey: key.privateKey,
        knownHosts: a.knownHostsLine
      }),
    path,
    healthTimeout: 60,
    lockTimeout: 60,
    log: log(),
    composeFiles: [compose],
    envFile: `APP_SECRET=${secret}\n`,
    images: [],
    version: 'v1',
    autoRollback: true,
    keepReleases: 3,
    stableSeconds: 1
  })
  if (r.status !== 'deployed') throw new Error(`deploy failed: ${r.error}`)
}, 180_000)

afterAll(async () => {
  if (path) removeProject(path)
  if (tag) removeImages(tag)
  await Promise.all([a?.stop(), b?.stop()])
  if (root) rmSync(root, { recursive: true, force: true })
})

describe('exec in the service container', () => {
  it('runs on two hosts at once, with the release variables and the release env', async () => {
    const r = await execOnHosts(
      opts({
        both: true,
        command:
          'echo "$SHIPLINE_HOST $SHIPLINE_VERSION $SHIPLINE_RELEASE_ID"; cat /www/version; echo to-stderr >&2'
      })
    )
    expect(r.failed).toEqual([])
    expect(r.hosts.map(h => h.host)).toEqual([label(a), label(b)])
    for (const h of r.hosts) {
      expect(h).toMatchObject({ ok: true, exitCode: 0, timedOut: false, service: 'web', version: 'v1' })
      expect(h.stdout).toBe(`${h.host} v1 ${h.releaseId}\nv1\n`)
      expect(h.stderr).toBe('to-stderr\n')
    }
  })

  it('a failing command: its exit code and output are reported, per host', async () => {
    const l = log()
    const r = await execOnHosts(
      opts({
        both: true,
        log: l,
        command: `echo out; echo err >&2; [ "$SHIPLINE_HOST" = "${label(b)}" ] && exit 7; exit 0`
      })
    )
    expect(r.failed).toEqual([label(b)])
    expect(r.hosts[0]).toMatchObject({ ok: true, exitCode: 0 })
    expect(r.hosts[1]).toMatchObject({ ok: false, exitCode: 7, stdout: 'out\n', stderr: 'err\n' })
    expect(r.hosts[1].error).toBeUndefined()
    expect(l.lines).toEqual(expect.arrayContaining([`[${label(b)}] out`, `[${label(b)} stderr] err`]))
  })

  it('a time-out stops the command inside the container too', async () => {
    const mark = 30 + Math.floor(Math.random() * 900)
    const t0 = Date.now()
    const r = await execOnHosts(opts({ command: `echo started; exec sleep ${mark}`, timeoutSec: 10 }))
    expect(Date.now() - t0).toBeLessThan(45_000)
    expect(r.hosts[0]).toMatchObject({
      ok: false,
      exitCode: null,
      timedOut: true,
      error: 'timed out after 10s: the command was stopped',
      stdout: 'started\n'
    })
    const top = execFileSync('docker', ['top', containerId()], { encoding: 'utf8' })
    expect(top).not.toContain(`sleep ${mark}`)
  })

  it('an unknown service and a host without a current release are refused before anything runs', async () => {
    const unknown = await execOnHosts(opts({ service: 'db', command: 'touch /tmp/exec-ran' }))
    expect(unknown.hosts[0]).toMatchObject({ ok: false, exitCode: null })
    expect(unknown.hosts[0].error).toMatch(/^release v1 \(.*\) does not define service 'db'\. Known: web\./)
    const none = await execOnHosts(opts({ path: bare, command: 'touch /tmp/exec-ran' }))
    expect(none.hosts[0].error).toMatch(/^no current release under .*bare: deploy one first \(deploy-ssh\)/)
    expect(() => execFileSync('docker', ['exec', containerId(), 'test', '-e', '/tmp/exec-ran'])).toThrow()
  })

  it('caps what it keeps of a large output, and masks the release .env values', async () => {
    const red = new Redactor()
    const l = log()
    const r = await execOnHosts(
      opts({
        log: l,
        command:
          'echo "secret is $APP_SECRET"; i=0; while [ $i -lt 5000 ]; do echo "row $i"; i=$((i+1)); done',
        outputLimit: 1024,
        addSecret: v => void red.add(v),
        redact: t => red.redact(t)
      })
    )
    const h = r.hosts[0]
    expect(h).toMatchObject({ ok: true, exitCode: 0, truncated: true })
    expect(h.stdout).toMatch(/^secret is \*\*\*\nrow 0\n/)
    expect(h.stdout).toMatch(/\[… \d+ bytes left out …\]\n/)
    expect(h.stdout).toMatch(/row 4999\n$/)
    expect(Buffer.byteLength(h.stdout)).toBeLessThan(1100)
    expect(JSON.stringify(r)).not.toContain(secret)
    expect(l.lines.join('\n')).not.toContain(secret)
    expect(l.lines).toContain(`[${label(a)}] secret is ***`)
  })
})

describe('exec on the host', () => {
  it('runs in the current release folder; without a release, in path', async () => {
    const r = await execOnHosts(
      opts({ both: true, service: undefined, command: 'pwd; ls; echo "$SHIPLINE_VERSION"' })
    )
    expect(r.failed).toEqual([])
    for (const h of r.hosts) {
      expect(h.stdout).toContain(`${path}/.shipline/releases/${h.releaseId}\n`)
      expect(h.stdout).toContain('release.json\n')
      expect(h.stdout).toMatch(/\nv1\n$/)
    }
    const none = await execOnHosts(
      opts({ path: bare, service: undefined, command: 'pwd; echo "[$SHIPLINE_VERSION]"' })
    )
    expect(none.hosts[0]).toMatchObject({ ok: true, exitCode: 0, stdout: `${bare}\n[]\n` })
  })

  it("a time-out kills the command's process group on the host", async () => {
    const mark = `${40 + Math.floor(Math.random() * 900)}.25`
    const r = await execOnHosts(
      opts({ service: undefined, command: `sleep ${mark}; echo never`, timeoutSec: 2 })
    )
    expect(r.hosts[0]).toMatchObject({
      timedOut: true,
      exitCode: null,
      error: 'timed out after 2s: the command was stopped'
    })
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    expect(ps).not.toContain(`sleep ${mark}`)
  })

  it('an unreachable host fails with its reason while the others run', async () => {
    const port = await freePort()
    const r = await execOnHosts(
      opts({ both: true, extraHost: String(port), service: undefined, command: 'echo hi' })
    )
    expect(r.failed).toEqual([`root@127.0.0.1:${port}`])
    expect(r.hosts[2].error).toMatch(/^cannot connect: /)
    expect(r.hosts.slice(0, 2).map(h => [h.ok, h.stdout])).toEqual([
      [true, 'hi\n'],
      [true, 'hi\n']
    ])
  })
})

describe('the deploy lock', () => {
  it('without lock: warns when a deploy holds it and runs; with lock: waits for it, then runs under it', async () => {
    const remote = await connectSsh({
      target: { host: a.host, port: a.port, user: a.user },
      privateKey: key.privateKey,
      knownHosts: a.knownHostsLine
    })
    const holder = new ReleaseStore(remote, { path, log: log() })
    try {
      await holder.lock(5, 'the test holder')
      const l = log()
      const free = await execOnHosts(opts({ service: undefined, log: l, command: 'echo ran' }))
      expect(free.hosts[0]).toMatchObject({ ok: true, stdout: 'ran\n' })
      expect(l.lines.join('\n')).toMatch(
        /WARN .*: a deploy holds the lock on .* \(the test holder\); running anyway/
      )
      const waited = await execOnHosts(
        opts({ service: undefined, lock: true, lockTimeoutSec: 1, command: 'echo ran' })
      )
      expect(waited.hosts[0]).toMatchObject({ ok: false, exitCode: null, stdout: '' })
      expect(waited.hosts[0].error).toMatch(/held the lock on .* for more than lock-timeout \(1s\)/)
    } finally {
      await holder.finish()
      await remote.close()
    }
    const locked = await execOnHosts(
      opts({
        lock: true,
        lockTimeoutSec: 10,
        owner: 'exec test',
        command: 'cat /proc/self/status >/dev/null; echo ran'
      })
    )
    expect(locked.hosts[0]).toMatchObject({ ok: true, exitCode: 0, stdout: 'ran\n' })
    // and it let the lock go
    const again = await execOnHosts(
      opts({ lock: true, lockTimeoutSec: 1, service: undefined, command: 'echo again' })
    )
    expect(again.hosts[0]).toMatchObject({ ok: true, stdout: 'again\n' })
  })
})

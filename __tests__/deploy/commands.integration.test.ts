/**
 * The release command, the backup and the hooks on real parts: a real sshd on a loopback port as the host,
 * the real Docker engine with docker-compose v1, a real registry for digests. The "database" is a Compose
 * service with a named volume; the migration is a one-off container of the new image writing the schema
 * version into it, so every claim is checked on what the host really holds: the new image ran it (its
 * APP_VERSION), the release's .env was in place (APP_SECRET), nothing live was replaced when it failed,
 * the ledger tells what ran, the lock is free, and the next deploy works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { projectName } from '../../src/lib/compose/layout.js'
import { parseHostCommand, parseReleaseCommand, type ReleaseCommands } from '../../src/lib/deploy/commands.js'
import { deploy, rollback, type DeployOptions } from '../../src/lib/deploy/index.js'
import { buildAppImage, removeRepository } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { sshFleet, startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { startTcpCut, type TcpCut } from '../../src/testkit/tcp-cut.js'
import {
  connectTo,
  digestResolver,
  liveVersion,
  quietLog,
  readLedger,
  workspace,
  type Workspace
} from './helpers.js'

let reg: TestRegistry
let sshd: Sshd
let ws: Workspace
let repo: string
let compose: string
const volumes: string[] = []

const COMPOSE = `version: "3.8"
services:
  db:
    image: placeholder.invalid/set-by-shipline:0
    init: true
    stop_grace_period: 1s
    volumes: ["data:/data"]
  web:
    image: placeholder.invalid/set-by-shipline:0
    init: true
    stop_grace_period: 1s
    ports: ["127.0.0.1::8080"]
    depends_on: [db]
    volumes: ["data:/data"]
    environment:
      APP_SECRET: \${APP_SECRET:-}
volumes:
  data: {}
`
// the release's .env must be in place for it: APP_SECRET comes only from there
const MIGRATE = `web=sh -c 'test -n "$APP_SECRET" && echo "migrating to $APP_VERSION" && echo "$APP_VERSION" >> /data/schema'`

beforeAll(async () => {
  ;[reg, sshd] = await Promise.all([startRegistry({ auth: 'none' }), startSshd()])
  ws = workspace()
  compose = join(ws.dir, 'with-db.yml')
  writeFileSync(compose, COMPOSE)
  repo = `${reg.host}/${uniqueName('commands')}/app`
  for (const v of ['v1', 'v2', 'v3']) {
    buildAppImage({ tag: `${repo}:${v}`, version: v })
    execFileSync('docker', ['push', '-q', `${repo}:${v}`], { stdio: 'ignore' })
  }
}, 120_000)

afterAll(async () => {
  ws?.cleanup()
  for (const v of volumes) {
    try {
      execFileSync('docker', ['volume', 'rm', '-f', v], { stdio: 'ignore' })
    } catch {
      /* gone */
    }
  }
  removeRepository(repo)
  await Promise.all([reg?.stop(), sshd?.stop()])
})

function opts(
  path: string,
  version: string,
  commands: ReleaseCommands,
  extra: Partial<DeployOptions> = {}
): DeployOptions {
  return {
    hosts: [`${sshd.user}@${sshd.host}:${sshd.port}`],
    connect: connectTo(sshd),
    path,
    healthTimeout: 60,
    lockTimeout: 120,
    log: quietLog(),
    composeFiles: [compose],
    envFile: 'APP_SECRET=s3cret-value-1\n',
    images: [`web=${repo}:${version}`, `db=${repo}:v1`],
    version,
    autoRollback: true,
    keepReleases: 5,
    resolveDigest: digestResolver(reg),
    stableSeconds: 1,
    commands,
    ...extra
  }
}

const newPath = (): string => {
  const p = ws.path()
  volumes.push(`${projectName(p)}_data`)
  return p
}
const schema = (path: string): string => {
  try {
    return execFileSync(
      'docker',
      ['run', '--rm', '-v', `${projectName(path)}_data:/data`, `${repo}:v1`, 'cat', '/data/schema'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }
    )
  } catch {
    return ''
  }
}
const webId = (path: string): string =>
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
const oneOffs = (path: string): string =>
  execFileSync('docker', ['ps', '-aq', '--filter', `name=${projectName(path)}-release-`], {
    encoding: 'utf8'
  }).trim()
const lockFree = (path: string): boolean => {
  try {
    execFileSync('flock', ['-n', join(path, '.shipline', 'lock'), 'true'])
    return true
  } catch {
    return false
  }
}
/** a final ledger entry, as the tests read it */
type Entry = Record<string, unknown> & {
  releaseCommand: { exit: number | null; tail: string }
  backup?: unknown
  release: string
}
const rc = (text: string, timeoutSec = 120) => parseReleaseCommand(text, timeoutSec)

describe('release command', () => {
  it('first deploy: runs in a one-off container of the new image with its .env, dependencies started, recorded', async () => {
    const path = newPath()
    const r = await deploy(opts(path, 'v1', { release: rc(MIGRATE) }))
    expect(r.status).toBe('deployed')
    expect(schema(path)).toBe('v1\n')
    expect(await liveVersion(path)).toBe('v1')
    const last = readLedger(path).pop() as Entry
    expect(last.event).toBe('deploy')
    expect(last.releaseCommand).toMatchObject({ service: 'web', exit: 0, tail: 'migrating to v1' })
    expect(r.hosts[0].commands?.map(c => [c.name, c.ok])).toEqual([['release-command', true]])
    // its output is kept with the release, and no one-off container is left behind
    expect(
      readFileSync(join(path, '.shipline', 'releases', r.releaseId, 'release-command.log'), 'utf8')
    ).toContain('migrating to v1')
    expect(oneOffs(path)).toBe('')
    expect(lockFree(path)).toBe(true)
  }, 180_000)

  it('a failing migration: nothing live replaced, the step fails with its last lines, ledger true, next deploy works', async () => {
    const path = newPath()
    expect((await deploy(opts(path, 'v1', { release: rc(MIGRATE) }))).status).toBe('deployed')
    const before = webId(path)
    const log = quietLog()
    const bad = await deploy({
      ...opts(path, 'v2', {
        release: rc(`web=sh -c 'echo step 1 ok; echo "relation users already exists" >&2; exit 3'`)
      }),
      log
    })
    expect(bad.status).toBe('failed')
    expect(bad.error).toMatch(
      /the release command \(web: .*\) failed \(exit 3\): [^;]*relation users already exists[^;]*; nothing live changed, v1 still serves/
    )
    expect(webId(path)).toBe(before)
    expect(await liveVersion(path)).toBe('v1')
    expect(schema(path)).toBe('v1\n')
    const last = readLedger(path).pop() as Entry
    expect(last).toMatchObject({ event: 'aborted', attemptedVersion: 'v2', version: 'v1' })
    // stdout and stderr cross docker as two streams: both lines are kept, in whichever order they arrived
    expect(last.releaseCommand).toMatchObject({ exit: 3 })
    expect(last.releaseCommand.tail.split('\n').sort()).toEqual([
      'relation users already exists',
      'step 1 ok'
    ])
    expect(readlinkCurrent(path)).toBe(last.release)
    expect(lockFree(path)).toBe(true)
    expect(oneOffs(path)).toBe('')
    expect((await deploy(opts(path, 'v2', { release: rc(MIGRATE) }))).status).toBe('deployed')
    expect(schema(path)).toBe('v1\nv2\n')
  }, 240_000)

  it('a migration over its time limit is stopped, its container removed; nothing live changed', async () => {
    const path = newPath()
    expect((await deploy(opts(path, 'v1', {}))).status).toBe('deployed')
    const before = webId(path)
    const r = await deploy(opts(path, 'v2', { release: rc(`web=sleep 60`, 2) }))
    expect(r.status).toBe('failed')
    expect(r.error).toMatch(/did not finish within 2s and was stopped; nothing live changed/)
    expect(webId(path)).toBe(before)
    expect(oneOffs(path)).toBe('')
    expect((readLedger(path).pop() as Entry).releaseCommand.exit).toBeNull()
    expect(lockFree(path)).toBe(true)
  }, 180_000)

  it('the link lost during the migration: it runs to its end (not killed half-way), then the host closes the transaction', async () => {
    const path = newPath()
    expect((await deploy(opts(path, 'v1', {}))).status).toBe('deployed')
    const before = webId(path)
    const cut: TcpCut = await startTcpCut(sshd.port)
    try {
      const r = await deploy({
        ...opts(path, 'v2', { release: rc(`web=sh -c 'sleep 3; echo "$APP_VERSION done" >> /data/schema'`) }),
        connect: sshFleet(sshd, cut).connect,
        onStep: e => {
          if (e.step === 'release-command' && e.phase === 'start') setTimeout(() => cut.cut(), 1000)
        }
      })
      expect(cut.cuts().length).toBe(1)
      // the verdict read back from the host's journal: nothing live changed
      expect(r.status).toBe('failed')
      expect(webId(path)).toBe(before)
      expect(await liveVersion(path)).toBe('v1')
      expect(schema(path)).toBe('v2 done\n')
      const last = readLedger(path).pop() as Entry
      expect(last).toMatchObject({ event: 'aborted', attemptedVersion: 'v2', version: 'v1' })
      expect(lockFree(path)).toBe(true)
      expect(oneOffs(path)).toBe('')
    } finally {
      await cut.stop()
    }
    expect((await deploy(opts(path, 'v3', {}))).status).toBe('deployed')
  }, 240_000)
})

describe('backup and hooks', () => {
  it('pre-deploy, backup, release command, post-deploy run in order with SHIPLINE_* and the backup is kept with its release', async () => {
    const path = newPath()
    expect((await deploy(opts(path, 'v1', {}))).status).toBe('deployed')
    const order = join(path, 'order.log')
    const hook = (name: string) =>
      parseHostCommand(
        `echo "${name} $SHIPLINE_VERSION from=$SHIPLINE_PREVIOUS_VERSION host=$SHIPLINE_HOST pwd=$(pwd)" >> ${order}`,
        30
      )
    const r = await deploy(
      opts(
        path,
        'v2',
        {
          preDeploy: hook('pre'),
          backup: parseHostCommand(
            `cat "$SHIPLINE_RELEASE_DIR/../../../order.log" > "$SHIPLINE_BACKUP_DIR/dump.sql"; echo backup >> ${order}`,
            30
          ),
          release: rc(`web=sh -c 'echo release >&2'`),
          postDeploy: hook('post')
        },
        { keepReleases: 1 }
      )
    )
    expect(r.status).toBe('deployed')
    const lines = readFileSync(order, 'utf8').trim().split('\n')
    const dir = join(path, '.shipline', 'releases', r.releaseId)
    expect(lines).toEqual([
      `pre v2 from=v1 host=${sshd.user}@${sshd.host}:${sshd.port} pwd=${dir}`,
      'backup',
      `post v2 from=v1 host=${sshd.user}@${sshd.host}:${sshd.port} pwd=${dir}`
    ])
    const backup = join(path, '.shipline', 'backups', r.releaseId)
    expect(readFileSync(join(backup, 'dump.sql'), 'utf8')).toContain('pre v2')
    const last = readLedger(path).pop() as Entry
    expect(last.backup).toMatchObject({ exit: 0, dir: backup })
    expect(r.hosts[0].commands?.map(c => c.name)).toEqual([
      'pre-deploy',
      'backup-command',
      'release-command',
      'post-deploy'
    ])
    // keep-releases 1 (the previous release is always kept): two deploys later, this release is pruned,
    // and its backup with it
    expect((await deploy(opts(path, 'v3', {}, { keepReleases: 1 }))).status).toBe('deployed')
    expect(existsSync(backup)).toBe(true)
    expect((await deploy(opts(path, 'v1', {}, { keepReleases: 1 }))).status).toBe('deployed')
    expect(existsSync(dir)).toBe(false)
    expect(existsSync(backup)).toBe(false)
  }, 240_000)

  it('a failing pre-deploy or backup stops the deploy before anything live changes; a failing post-deploy is a warning', async () => {
    const path = newPath()
    expect((await deploy(opts(path, 'v1', {}))).status).toBe('deployed')
    const before = webId(path)
    const pre = await deploy(opts(path, 'v2', { preDeploy: parseHostCommand('echo not today; exit 4', 30) }))
    expect(pre.error).toMatch(
      /pre-deploy failed \(exit 4\): not today; nothing live changed, v1 still serves/
    )
    const backup = await deploy(
      opts(path, 'v2', {
        backup: parseHostCommand('exit 5', 30),
        release: rc(`web=sh -c 'echo ran >> /data/schema'`)
      })
    )
    expect(backup.error).toMatch(
      /backup-command failed \(exit 5\).*the release command did not run; nothing live changed/
    )
    expect(schema(path)).toBe('')
    expect(webId(path)).toBe(before)
    const log = quietLog()
    const post = await deploy({ ...opts(path, 'v2', { postDeploy: parseHostCommand('exit 6', 30) }), log })
    expect(post.status).toBe('deployed')
    expect(
      log.lines.some(l =>
        /^WARN .*v2 is live; the post-deploy hook failed: post-deploy failed \(exit 6\)/.test(l)
      )
    ).toBe(true)
    expect(lockFree(path)).toBe(true)
  }, 240_000)

  it('a rollback past a release that ran a release command warns that the schema does not go back by itself', async () => {
    const path = newPath()
    expect((await deploy(opts(path, 'v1', {}))).status).toBe('deployed')
    expect((await deploy(opts(path, 'v2', { release: rc(MIGRATE) }))).status).toBe('deployed')
    const log = quietLog()
    const r = await rollback({
      hosts: ['h'],
      connect: connectTo(sshd),
      path,
      healthTimeout: 60,
      lockTimeout: 120,
      log,
      stableSeconds: 1
    })
    expect(r.toVersion).toBe('v1')
    expect(log.lines.find(l => l.startsWith('WARN') && l.includes('rolling back past'))).toMatch(
      /rolling back past v2 \(release command: sh -c .*\): the code goes back, the database schema does not by itself/
    )
  }, 240_000)
})

function readlinkCurrent(path: string): string {
  return execFileSync('readlink', [join(path, '.shipline', 'current')], { encoding: 'utf8' })
    .trim()
    .split('/')
    .pop()!
}

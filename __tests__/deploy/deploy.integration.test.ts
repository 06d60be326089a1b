/**
 * deploy() and rollback() through a real sshd on a loopback port (its own host key, key-only auth) acting
 * as the compose host, the real Docker engine and docker-compose v1, and a real registry for digests.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { projectName } from '../../src/lib/compose/layout.js'
import { join } from 'node:path'
import { deploy, rollback, type DeployOptions, type RollbackOptions } from '../../src/lib/deploy/index.js'
import { isUserError } from '../../src/lib/errors.js'
import { buildAppImage, removeRepository } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { generateClientKey, startSshd, type Sshd } from '../../src/testkit/sshd.js'
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

beforeAll(async () => {
  ;[reg, sshd] = await Promise.all([startRegistry({ auth: 'none' }), startSshd()])
  ws = workspace()
  repo = `${reg.host}/${uniqueName('deploy')}/app`
  for (const [v, healthy] of [
    ['v1', true],
    ['v2', true],
    ['v3', false]
  ] as const) {
    buildAppImage({ tag: `${repo}:${v}`, version: v, healthy })
    execFileSync('docker', ['push', '-q', `${repo}:${v}`], { stdio: 'ignore' })
  }
}, 120_000)

afterAll(async () => {
  ws?.cleanup()
  removeRepository(repo)
  await Promise.all([reg?.stop(), sshd?.stop()])
})

function opts(path: string, version: string, extra: Partial<DeployOptions> = {}): DeployOptions {
  return {
    hosts: [`${sshd.user}@${sshd.host}:${sshd.port}`],
    connect: connectTo(sshd),
    path,
    healthTimeout: 60,
    lockTimeout: 120,
    log: quietLog(),
    composeFiles: [ws.compose],
    images: [`web=${repo}:${version}`],
    version,
    autoRollback: true,
    keepReleases: 3,
    resolveDigest: digestResolver(reg),
    stableSeconds: 2,
    ...extra
  }
}

function rb(path: string, extra: Partial<RollbackOptions> = {}): RollbackOptions {
  return {
    hosts: ['h'],
    connect: connectTo(sshd),
    path,
    healthTimeout: 60,
    lockTimeout: 120,
    log: quietLog(),
    stableSeconds: 2,
    ...extra
  }
}

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (e) {
    expect(isUserError(e)).toBe(true)
    return (e as Error).message
  }
  throw new Error('expected a refusal')
}

describe('refusals before any change on the host', () => {
  it('refuses unsafe paths and invalid image references without connecting', async () => {
    let connects = 0
    const counting = { connect: async () => (connects++, connectTo(sshd)('x')) }
    const path = ws.path()
    for (const bad of [
      'relative/app',
      '/',
      '/etc',
      '/tmp/../etc/app',
      '/tmp/a;touch${IFS}x',
      '/tmp/$(id)',
      '/tmp/a b',
      '/tmp//a'
    ]) {
      expect(await refused(deploy({ ...opts(bad, 'v1'), ...counting }))).toMatch(/Input 'path'/)
      expect(await refused(rollback({ ...rb(bad), ...counting }))).toMatch(/Input 'path'/)
    }
    for (const img of [
      'web=UPPER/app:1',
      `web=${repo}:bad tag`,
      `web=${repo}@sha256:1234`,
      'web=',
      'nosuch=app:1',
      'web=http://x/app:1'
    ]) {
      await refused(deploy({ ...opts(path, 'v1'), ...counting, images: [img] }))
    }
    expect(await refused(deploy({ ...opts(path, 'v1'), ...counting, services: ['ghost'] }))).toMatch(
      /services/
    )
    expect(await refused(deploy({ ...opts(path, 'bad version!'), ...counting }))).toMatch(/version/)
    expect(connects).toBe(0)
    expect(existsSync(path)).toBe(false)
  })

  it('refuses a wrong host key, no host key and an unauthorized key before changing anything', async () => {
    const path = ws.path()
    const other = generateClientKey()
    const wrongLine = `[${sshd.host}]:${sshd.port} ${other.publicKey.split(' ').slice(0, 2).join(' ')}`
    expect(
      await refused(deploy({ ...opts(path, 'v1'), connect: connectTo(sshd, { knownHosts: wrongLine }) }))
    ).toMatch(/host key|known/i)
    const noKey = await refused(
      deploy({
        ...opts(path, 'v1'),
        connect: () =>
          import('../../src/lib/ssh/client.js').then(m =>
            m.connectSsh({
              target: { host: sshd.host, port: sshd.port, user: 'root' },
              privateKey: sshd.clientKey.privateKey
            })
          )
      })
    )
    expect(noKey).toMatch(/known-hosts|host-fingerprint/)
    expect(
      await refused(
        deploy({ ...opts(path, 'v1'), connect: connectTo(sshd, { privateKey: other.privateKey }) })
      )
    ).toMatch(/refused/i)
    expect(existsSync(path)).toBe(false)
  })
})

describe('releases on one host', () => {
  let path: string
  const ids: Record<string, string> = {}

  beforeAll(() => {
    path = ws.path()
  })

  it('first deploy: a release folder, .env 0600, current, ledger, and the app answers', async () => {
    const r = await deploy(opts(path, 'v1', { envFile: 'APP_SECRET=first-secret\n' }))
    expect(r.status).toBe('deployed')
    expect(r.previousVersion).toBe('')
    expect(r.images.web).toMatch(new RegExp(`^${repo.replace(/[.]/g, '\\.')}@sha256:[a-f0-9]{64}$`))
    ids.v1 = r.releaseId
    expect(await liveVersion(path)).toBe('v1')
    const rel = join(path, '.shipline', 'releases', r.releaseId)
    expect(readlinkSync(join(path, '.shipline', 'current'))).toBe(`releases/${r.releaseId}`)
    expect(statSync(join(rel, '.env')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(rel, 'shipline.override.yml'), 'utf8')).toContain(r.images.web)
    const meta = JSON.parse(readFileSync(join(rel, 'release.json'), 'utf8'))
    expect(meta).toMatchObject({
      id: r.releaseId,
      version: 'v1',
      images: r.images,
      updated: ['web'],
      services: ['web']
    })
    expect(readLedger(path)).toEqual([
      expect.objectContaining({ event: 'deploy', release: r.releaseId, version: 'v1' })
    ])
    expect(r.hosts[0]).toMatchObject({ status: 'deployed', compose: 'v1' })
    expect(readdirSync(join(path, '.shipline', 'run'))).toEqual([])
  })

  it("second deploy replaces the first one's containers and carries the .env over", async () => {
    const r = await deploy(opts(path, 'v2'))
    expect(r).toMatchObject({ status: 'deployed', previousVersion: 'v1', version: 'v2' })
    ids.v2 = r.releaseId
    expect(await liveVersion(path)).toBe('v2')
    expect(readFileSync(join(path, '.shipline', 'releases', r.releaseId, '.env'), 'utf8')).toBe(
      'APP_SECRET=first-secret\n'
    )
  })

  it('an image whose healthcheck never passes is rolled back by itself; the old version answers', async () => {
    const log = quietLog()
    const r = await deploy(opts(path, 'v3', { log }))
    expect(r.status).toBe('rolled-back')
    expect(r.version).toBe('v2')
    expect(r.releaseId).toBe(ids.v2)
    expect(r.error).toMatch(/v3 did not turn healthy/)
    expect(r.hosts[0].status).toBe('rolled-back')
    expect(log.lines.join('\n')).toMatch(/last log lines/)
    expect(await liveVersion(path)).toBe('v2')
    expect(readlinkSync(join(path, '.shipline', 'current'))).toBe(`releases/${ids.v2}`)
    expect(readLedger(path).pop()).toMatchObject({ event: 'auto-rollback', release: ids.v2 })
  })

  it('a failing first deploy has nothing to go back to: failed', async () => {
    const p = ws.path()
    const r = await deploy({ ...opts(p, 'v3'), healthTimeout: 20 })
    expect(r.status).toBe('failed')
    expect(r.error).toMatch(/no previous release/)
    expect(existsSync(join(p, '.shipline', 'current'))).toBe(false)
  })

  it('rollback: by default to the release live before, then a named version, then a no-op', async () => {
    const r1 = await rollback(rb(path))
    expect(r1).toMatchObject({ status: 'rolled-back', fromVersion: 'v2', toVersion: 'v1', releaseId: ids.v1 })
    expect(await liveVersion(path)).toBe('v1')
    expect(readLedger(path).pop()).toMatchObject({ event: 'rollback', release: ids.v1, from: ids.v2 })

    const r2 = await rollback(rb(path, { to: 'v2' }))
    expect(r2).toMatchObject({ status: 'rolled-back', fromVersion: 'v1', toVersion: 'v2', releaseId: ids.v2 })
    expect(await liveVersion(path)).toBe('v2')

    const n = readLedger(path).length
    const r3 = await rollback(rb(path, { to: ids.v2 }))
    expect(r3).toMatchObject({ status: 'unchanged', toVersion: 'v2' })
    expect(readLedger(path).length).toBe(n)

    expect(await refused(rollback(rb(path, { to: 'v9' })))).toMatch(/no release with version or id 'v9'/)
  })

  it('two deploys started at once on one path run one after the other', async () => {
    const logA = quietLog()
    const logB = quietLog()
    const [a, b] = await Promise.all([
      deploy(opts(path, 'v1', { log: logA })),
      deploy(opts(path, 'v2', { log: logB }))
    ])
    expect([a.status, b.status]).toEqual(['deployed', 'deployed'])
    expect([...logA.lines, ...logB.lines].join('\n')).toMatch(/another deploy holds the lock/)
    const deploys = readLedger(path)
      .filter(e => e.event === 'deploy')
      .slice(-2)
    // the second one to run saw the first one's release as its predecessor
    expect(deploys[1].from).toBe(deploys[0].release)
    const last = deploys[1].version as string
    expect(await liveVersion(path)).toBe(last)
    // keep-releases 3: the current one, its predecessor and one more
    expect(readdirSync(join(path, '.shipline', 'releases')).length).toBeLessThanOrEqual(3)
    expect(readdirSync(join(path, '.shipline', 'releases'))).toEqual(
      expect.arrayContaining([deploys[1].release, deploys[0].release])
    )
  })
})

describe('auto-rollback off', () => {
  it('leaves the failed release running; a rollback to the current version brings it back (not a no-op)', async () => {
    const path = ws.path()
    expect((await deploy(opts(path, 'v1'))).status).toBe('deployed')
    const r = await deploy({ ...opts(path, 'v3'), autoRollback: false })
    expect(r.status).toBe('failed')
    expect(r.error).toMatch(/auto-rollback is off/)
    expect(await liveVersion(path)).toBe('v3')
    const back = await rollback(rb(path, { to: 'v1' }))
    expect(back).toMatchObject({ status: 'rolled-back', toVersion: 'v1' })
    expect(await liveVersion(path)).toBe('v1')
  })
})

describe('services: only the named services are updated', () => {
  it('recreates web with --no-deps, leaves side running as it was, and keeps side pinned in the new release', async () => {
    const path = ws.path()
    const compose = join(ws.dir, 'two-services.yml')
    writeFileSync(
      compose,
      [
        'services:',
        ...['web', 'side'].flatMap(s => [
          `  ${s}:`,
          '    image: placeholder.invalid/x:0',
          '    init: true',
          '    stop_grace_period: 1s'
        ])
      ].join('\n') + '\n'
    )
    const first = await deploy({
      ...opts(path, 'v1'),
      composeFiles: [compose],
      images: [`web=${repo}:v1`, `side=${repo}:v1`]
    })
    expect(first.status).toBe('deployed')
    const sideId = containerOf(path, 'side')
    const second = await deploy({
      ...opts(path, 'v2'),
      composeFiles: [compose],
      images: [`web=${repo}:v2`],
      services: ['web']
    })
    expect(second.status).toBe('deployed')
    expect(containerOf(path, 'side')).toBe(sideId)
    expect(second.images).toEqual({ side: first.images.side, web: expect.stringContaining('@sha256:') })
    expect(second.images.web).not.toBe(first.images.web)
    const meta = JSON.parse(
      readFileSync(join(path, '.shipline', 'releases', second.releaseId, 'release.json'), 'utf8')
    )
    expect(meta.updated).toEqual(['web'])
  })
})

function containerOf(path: string, service: string): string {
  return execFileSync(
    'docker',
    [
      'ps',
      '-q',
      '--no-trunc',
      '--filter',
      `label=com.docker.compose.project=${projectName(path)}`,
      '--filter',
      `label=com.docker.compose.service=${service}`
    ],
    { encoding: 'utf8' }
  ).trim()
}

/**
 * Maintenance mode on real parts (sshd, nginx): `on` makes the project's nginx answer 503 with Retry-After
 * and the page, `off` brings the app back, each under the host lock and journaled; a failing `nginx -t`
 * puts the previous files back (the app keeps serving), the lock is free and the next switch works; a fleet
 * is all or nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createServer, type Server } from 'node:http'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { maintenance, type MaintenanceConfig } from '../../src/lib/deploy/maintenance.js'
import { deploy } from '../../src/lib/deploy/index.js'
import type { DeployOptions } from '../../src/lib/deploy/types.js'
import { parseHostCommand, parseReleaseCommand } from '../../src/lib/deploy/commands.js'
import { BUSYBOX } from '../../src/testkit/images.js'
import { freePort, uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { startTcpCut, type TcpCut } from '../../src/testkit/tcp-cut.js'
import { headDigest, pushApps, teardown } from '../strategy/helpers.js'
import { startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { sshFleet, startSshd, type Sshd } from '../../src/testkit/sshd.js'

describe('maintenance mode', () => {
  let sshd: Sshd
  let nginx: Nginx
  let app: Server
  const base = mkdtempSync(join(tmpdir(), 'shipline-maint-'))
  const path = `${base}/app`
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  let cfg: MaintenanceConfig
  const ledger = () =>
    readFileSync(`${path}/.shipline/ledger.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as { event: string; maintenance?: string })
  const get = async () => {
    const r = await fetch(`${nginx.url}/anything`)
    return { status: r.status, retryAfter: r.headers.get('retry-after'), body: await r.text() }
  }
  const run = (on: boolean, extra: Partial<Parameters<typeof maintenance>[0]> = {}) =>
    maintenance({ ...sshFleet(sshd), path, lockTimeout: 30, on, cfg, log, ...extra })

  beforeAll(async () => {
    sshd = await startSshd()
    app = createServer((_q, s) => s.end('app ok\n'))
    await new Promise<void>(r => app.listen(0, '127.0.0.1', () => r()))
    mkdirSync(`${path}/.shipline/nginx`, { recursive: true })
    nginx = await startNginx({
      includeFile: `${base}/upstream.conf`,
      initialPort: (app.address() as AddressInfo).port,
      serverInclude: `${path}/.shipline/nginx/maintenance*.inc`
    })
    cfg = {
      testCommand: nginx.testCommand,
      reloadCommand: nginx.reloadCommand,
      retryAfterSec: 90,
      page: '<h1>back soon</h1>\n'
    }
  }, 60_000)

  afterAll(async () => {
    await nginx?.stop()
    await sshd?.stop()
    await new Promise(r => app?.close(r))
    rmSync(base, { recursive: true, force: true })
  })

  it('on: 503 with Retry-After and the page; off: the app again; both journaled, the lock free', async () => {
    expect(await get()).toMatchObject({ status: 200, body: 'app ok\n' })
    const on = await run(true)
    expect(on).toMatchObject({ ok: true })
    expect(await get()).toEqual({ status: 503, retryAfter: '90', body: '<h1>back soon</h1>\n' })
    const off = await run(false)
    expect(off.ok).toBe(true)
    expect(await get()).toMatchObject({ status: 200, body: 'app ok\n' })
    expect(ledger().map(e => `${e.event} ${e.maintenance}`)).toEqual(['maintenance on', 'maintenance off'])
    // the include file stays (comment only), so the user's include keeps resolving
    expect(readFileSync(`${path}/.shipline/nginx/maintenance.inc`, 'utf8')).toMatch(
      /^# written by shipline: maintenance off/
    )
    // the lock is free: flock takes it at once
    expect(() => execFileSync('flock', ['-n', `${path}/.shipline/lock`, 'true'])).not.toThrow()
  }, 60_000)

  it('a failing nginx test puts the previous files back: the app keeps serving, nothing journaled, next switch works', async () => {
    const before = readFileSync(`${path}/.shipline/nginx/maintenance.inc`, 'utf8')
    const bad = await run(true, {
      cfg: { ...cfg, testCommand: 'echo "nginx: [emerg] unexpected }" >&2; exit 1' }
    })
    expect(bad.ok).toBe(false)
    expect(bad.error).toMatch(
      /switching maintenance on failed: nginx test .* failed: nginx: \[emerg\] unexpected }; nginx keeps its previous configuration/
    )
    expect(readFileSync(`${path}/.shipline/nginx/maintenance.inc`, 'utf8')).toBe(before)
    expect(await get()).toMatchObject({ status: 200 })
    expect(ledger().filter(e => e.event === 'maintenance')).toHaveLength(2)
    expect((await run(true)).ok).toBe(true)
    expect((await get()).status).toBe(503)
    expect((await run(false)).ok).toBe(true)
  }, 60_000)

  it('a fleet is all or nothing: when the second host fails, the first is switched back', async () => {
    const fleet = sshFleet(sshd)
    const r = await run(true, {
      hosts: [fleet.hosts[0], 'root@127.0.0.1:1'],
      connect: async h => {
        if (h.endsWith(':1')) throw new Error('connect ECONNREFUSED 127.0.0.1:1')
        return fleet.connect()
      }
    })
    expect(r.ok).toBe(false)
    expect(r.error).toMatch(/ECONNREFUSED.*switched back on root@127\.0\.0\.1:\d+/)
    expect((await get()).status).toBe(200)
    expect(
      ledger()
        .slice(-2)
        .map(e => `${e.event} ${e.maintenance}`)
    ).toEqual(['maintenance on', 'maintenance off'])
  }, 60_000)
})

describe('maintenance: release around a deploy', () => {
  let reg: TestRegistry
  let sshd: Sshd
  let nginx: Nginx
  const base = mkdtempSync(join(tmpdir(), 'shipline-maintd-'))
  const path = `${base}/app`
  const run = uniqueName('m')
  let image = ''
  let port = 0
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  let opts: Omit<DeployOptions, 'images' | 'version'>
  const seen = `${base}/seen`
  const events = () =>
    readFileSync(`${path}/.shipline/ledger.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map(l => JSON.parse(l) as { event: string; maintenance?: string })
      .map(e => `${e.event}${e.maintenance ? ` ${e.maintenance}` : ''}`)
  const get = async () => {
    const r = await fetch(`${nginx.url}/version`)
    return `${r.status} ${(await r.text()).trim().split('_')[0]}`
  }

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' })
    sshd = await startSshd()
    image = `${reg.host}/${run.toLowerCase()}`
    pushApps(image, run, ['v1', 'v2', 'bad'])
    port = await freePort()
    mkdirSync(`${path}/.shipline/nginx`, { recursive: true })
    nginx = await startNginx({
      includeFile: `${base}/upstream.conf`,
      initialPort: port,
      serverInclude: `${path}/.shipline/nginx/maintenance*.inc`
    })
    const compose = join(base, 'docker-compose.yml')
    writeFileSync(
      compose,
      [
        'services:',
        '  web:',
        '    image: placeholder',
        '    init: true',
        '    network_mode: bridge',
        `    ports: ["127.0.0.1:${port}:8080"]`,
        ''
      ].join('\n')
    )
    opts = {
      ...sshFleet(sshd),
      path,
      healthTimeout: 30,
      lockTimeout: 60,
      log,
      stableSeconds: 1,
      composeFiles: [compose],
      autoRollback: true,
      keepReleases: 5,
      resolveDigest: headDigest(reg.url),
      maintenance: {
        testCommand: nginx.testCommand,
        reloadCommand: nginx.reloadCommand,
        retryAfterSec: 30
      },
      // what the site answers while the deploy's commands run (after the page went on)
      commands: {
        preDeploy: parseHostCommand(
          `${BUSYBOX} wget -S -O /dev/null ${nginx.url}/version 2>&1 | grep -o 'HTTP/1.1 [0-9]*' | head -n 1 > ${seen}; true`,
          30
        )
      }
    }
  }, 180_000)

  afterAll(() =>
    teardown({
      paths: [path],
      parts: [nginx, sshd, reg],
      images: ['v1', 'v2', 'bad'].map(v => `${image}:${v}`),
      dir: base
    })
  )

  it('the page is on while the commands run and off in the switch; a failed command or an unhealthy release switches it off again', async () => {
    const r1 = await deploy({ ...opts, images: [`web=${image}:v1`], version: 'v1' })
    expect(r1.error).toBeUndefined()
    expect(readFileSync(seen, 'utf8').trim()).toBe('HTTP/1.1 503')
    expect(await get()).toBe('200 v1')
    expect(events()).toEqual(['begin', 'maintenance on', 'deploy off'])

    // a release command that fails: nothing live changed, the page goes off again
    const r2 = await deploy({
      ...opts,
      commands: { ...opts.commands, release: parseReleaseCommand(`web=sh -c 'echo no >&2; exit 2'`, 60) },
      images: [`web=${image}:v2`],
      version: 'v2'
    })
    expect(r2.status).toBe('failed')
    expect(await get()).toBe('200 v1')
    expect(events().slice(-4)).toEqual(['begin', 'maintenance on', 'maintenance off', 'aborted'])

    // an unhealthy release: v1 is put back, then the page goes
    const r3 = await deploy({ ...opts, images: [`web=${image}:bad`], version: 'bad' })
    expect(r3.status).toBe('rolled-back')
    expect(await get()).toBe('200 v1')
    expect(events().slice(-4)).toEqual(['begin', 'maintenance on', 'maintenance off', 'auto-rollback'])

    const r4 = await deploy({ ...opts, images: [`web=${image}:v2`], version: 'v2' })
    expect(r4.status).toBe('deployed')
    expect(await get()).toBe('200 v2')
  }, 300_000)

  it('the link lost during the release command: the host switches the page off and closes the transaction by itself', async () => {
    const cut: TcpCut = await startTcpCut(sshd.port)
    try {
      const r = await deploy({
        ...opts,
        commands: { ...opts.commands, release: parseReleaseCommand(`web=sh -c 'sleep 3'`, 60) },
        images: [`web=${image}:v1`],
        version: 'v1-cut',
        connect: sshFleet(sshd, cut).connect,
        onStep: e => {
          if (e.step === 'release-command' && e.phase === 'start') setTimeout(() => cut.cut(), 1000)
        }
      })
      expect(cut.cuts().length).toBe(1)
      expect(r.status).toBe('failed')
    } finally {
      await cut.stop()
    }
    // the verdict was read back from the host's journal once the lock holder had closed it
    expect(events().slice(-3)).toEqual(['begin', 'maintenance on', 'aborted off'])
    expect(await get()).toBe('200 v2')
    expect((await deploy({ ...opts, images: [`web=${image}:v1`], version: 'v1-after' })).status).toBe(
      'deployed'
    )
    expect(await get()).toBe('200 v1')
  }, 240_000)
})

/**
 * `keep-previous-warm` on real parts (sshd, registry, dockerd, docker-compose, nginx), through deploy() and
 * rollback() over SSH, under steady load through nginx (loopback, bounded):
 *
 * - after a switch the old slot keeps running, recorded as kept warm, with a timer on the host;
 * - a rollback inside the window is a proxy switch: the same containers serve again (not restarted), 0
 *   failed requests;
 * - the window ends on the host (the timer, under the deploy lock): the slot is stopped and kept, and a
 *   rollback then starts it again;
 * - a deploy of a new release inside the window replaces the warm slot, and the earlier timer leaves the
 *   next warm slot alone;
 * - the SSH link lost right after the switch: the deploy stands, the lock is freed, and the window still
 *   ends (the timer was armed inside the close step, on the host);
 * - a damaged or missing kept record: the rollback starts the slot the usual way and serves;
 * - the SSH link lost in a rollback to the warm slot after it was found running: the lock holder's recovery
 *   leaves the live release serving and current, and the next rollback works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy, rollback } from '../../src/lib/deploy/index.js'
import type { DeployOptions, RollbackOptions, StepEvent } from '../../src/lib/deploy/types.js'
import { slotProject, upstreamName } from '../../src/lib/strategy/blue-green.js'
import { runtimeFactory } from '../../src/lib/strategy/host.js'
import { parseSlotPorts } from '../../src/lib/strategy/options.js'
import { projectName } from '../../src/lib/compose/layout.js'
import { startLoad } from '../../src/testkit/load.js'
import { freePort, sleep, uniqueName } from '../../src/testkit/net.js'
import { startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { sshFleet, startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { startTcpCut } from '../../src/testkit/tcp-cut.js'
import { deployCommon, ledgerEvents, losses, pushApps, teardown, webCompose } from './helpers.js'

const VERSIONS = ['v1', 'v2', 'v3'] as const

describe('keep-previous-warm behind nginx', () => {
  let reg: TestRegistry
  let sshd: Sshd
  let nginx: Nginx
  const base = mkdtempSync(join(tmpdir(), 'shipline-warm-'))
  const run = uniqueName('warm')
  const path = `${base}/app`
  const state = `${path}/.shipline`
  let image = ''
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  let ports: [number, number] = [0, 0]
  let events: StepEvent[] = []

  const common = (warm: number) => ({
    ...deployCommon({
      link: sshFleet(sshd),
      path,
      log,
      composeFile: join(base, 'docker-compose.yml'),
      registryUrl: reg.url
    }),
    keepReleases: 10,
    onStep: (e: StepEvent) => void events.push(e),
    runtime: runtimeFactory({
      strategy: 'blue-green',
      target: 'compose',
      blueGreen: {
        ports: parseSlotPorts(`web=${ports[0]},${ports[1]}`),
        includeDir: `${path}-nginx`,
        testCommand: nginx.testCommand,
        reloadCommand: nginx.reloadCommand,
        drainSeconds: 1,
        minFreeMiB: 16,
        warmSeconds: warm
      }
    })!
  })
  const options = (version: string, warm: number): DeployOptions => ({
    ...common(warm),
    images: [`web=${image}:${version}`],
    version
  })
  const back = (warm: number): RollbackOptions => common(warm)

  const served = async (): Promise<string> =>
    (await (await fetch(`${nginx.url}/version`)).text()).trim().split('_')[0]
  /** the slot's containers: id, running, start time */
  const slot = (s: 'blue' | 'green'): { id: string; running: boolean; started: string }[] => {
    const ids = execFileSync(
      'docker',
      ['ps', '-aq', '--filter', `label=com.docker.compose.project=${slotProject(projectName(path), s)}`],
      { encoding: 'utf8' }
    )
      .trim()
      .split('\n')
      .filter(Boolean)
    return ids.map(id => {
      const [running, started] = execFileSync(
        'docker',
        ['inspect', '-f', '{{.State.Running}} {{.State.StartedAt}}', id],
        { encoding: 'utf8' }
      )
        .trim()
        .split(' ')
      return { id, running: running === 'true', started }
    })
  }
  const kept = (): string[] =>
    existsSync(`${state}/kept`) ? readFileSync(`${state}/kept`, 'utf8').trim().split('\n') : []
  const releaseOf = (version: string): string => {
    const lines = readFileSync(`${state}/ledger.jsonl`, 'utf8').trim().split('\n')
    const e = lines
      .map(l => JSON.parse(l) as { event: string; version: string; release?: string; id?: string })
      .reverse()
      .find(x => x.version === version && x.event !== 'begin')
    return (e?.release ?? e?.id)!
  }
  const current = (): string => execFileSync('readlink', [`${state}/current`], { encoding: 'utf8' }).trim()
  /** timer processes on the host for a warm token (its argv carries the token) */
  const timers = (token: string): number => {
    try {
      return execFileSync('pgrep', ['-f', token], { encoding: 'utf8' }).trim().split('\n').length
    } catch {
      return 0
    }
  }
  const token = (): string => /^warm (\w+)$/.exec(kept()[1] ?? '')?.[1] ?? ''
  /** polls a condition every 200 ms until it holds (bounded; never a timed assertion) */
  const until = async (what: string, ok: () => boolean, ms = 30_000): Promise<void> => {
    const end = Date.now() + ms
    while (!ok()) {
      if (Date.now() > end) throw new Error(`still not so after ${ms} ms: ${what}`)
      await sleep(200)
    }
  }
  const lockFree = (): boolean => !existsSync(`${state}/lock.owner`)

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' })
    sshd = await startSshd()
    image = `${reg.host}/${run.toLowerCase()}`
    pushApps(image, run, VERSIONS)
    ports = [await freePort(), await freePort()]
    webCompose(base, '${SHIPLINE_PORT}')
    mkdirSync(`${path}-nginx`, { recursive: true })
    nginx = await startNginx({
      includeFile: `${path}-nginx/web.conf`,
      upstreamName: upstreamName('web'),
      initialPort: ports[0]
    })
  }, 240_000)

  afterAll(async () => {
    // the host-side timers of this file's windows (each sleeps, then finds its state gone and exits)
    try {
      execFileSync('pkill', ['-f', state], { stdio: 'ignore' })
    } catch {
      /* none left */
    }
    await teardown({
      paths: [path],
      parts: [nginx, sshd, reg],
      images: VERSIONS.map(v => `${image}:${v}`),
      dir: base
    })
  })

  it('a rollback inside the window is a proxy switch: the same containers serve again, nothing lost', async () => {
    expect((await deploy(options('v1', 60))).status).toBe('deployed')
    const r2 = await deploy(options('v2', 60))
    expect(r2.error).toBeUndefined()
    expect(await served()).toBe('v2')
    // the old slot runs on, recorded as kept warm, with its timer on the host
    const blue = slot('blue')
    expect(blue.length).toBe(1)
    expect(blue[0].running).toBe(true)
    expect(kept()[0]).toBe(`blue ${releaseOf('v1')}`)
    const t1 = token()
    expect(t1).toMatch(/^[0-9a-f]{16}$/)
    expect(timers(t1)).toBe(1)
    expect(logs.some(m => /stays running for 60s \(keep-previous-warm\)/.test(m))).toBe(true)

    const load = startLoad({ url: `${nginx.url}/version`, rate: 50, maxMs: 60_000 })
    await sleep(500)
    events = []
    const rb = await rollback(back(60))
    await sleep(300)
    const res = await load.stop()
    expect(rb.error).toBeUndefined()
    expect(rb.status).toBe('rolled-back')
    expect(await served()).toBe('v1')
    // not restarted: the same container, the same start
    expect(slot('blue')).toEqual([{ ...blue[0], running: true }])
    expect(logs.some(m => /v1 was kept warm in blue: still running/.test(m))).toBe(true)
    // and now v2 is the one kept warm, under a token of its own
    expect(slot('green').map(c => c.running)).toEqual([true])
    expect(kept()[0]).toBe(`green ${releaseOf('v2')}`)
    expect(token()).not.toBe(t1)
    expect(current()).toBe(`releases/${releaseOf('v1')}`)
    expect(res.sent).toBeGreaterThan(10)
    expect(losses(res)).toEqual({ bad: 0, non2xx: {}, failed: {} })
    expect(events.filter(e => e.phase === 'end').map(e => e.step)).toContain('switch')
    expect(ledgerEvents(path).slice(-3)).toEqual(['deploy v1', 'deploy v2', 'rollback v1'])
  }, 240_000)

  it('the window ends on the host: the slot is stopped and kept, and a rollback starts it again', async () => {
    // a rollback to v2 inside its window (60 s), keeping v1 warm for 2 s only
    expect((await rollback(back(2))).status).toBe('rolled-back')
    expect(await served()).toBe('v2')
    const t = token()
    expect(kept()[0]).toBe(`blue ${releaseOf('v1')}`)
    const blue = slot('blue')
    expect(blue.map(c => c.running)).toEqual([true])
    // the timer stops the slot after 2 s and keeps it (the record without its warm line); nothing else
    await until('the warm window of the blue slot ended', () => timers(t) === 0 && !slot('blue')[0]?.running)
    expect(kept()).toEqual([`blue ${releaseOf('v1')}`])
    expect(slot('blue').map(c => c.id)).toEqual(blue.map(c => c.id))
    expect(lockFree()).toBe(true)
    expect(await served()).toBe('v2')

    const rb = await rollback(back(0))
    expect(rb.status).toBe('rolled-back')
    expect(await served()).toBe('v1')
    expect(logs.some(m => /v1 was kept stopped in blue: started again/.test(m))).toBe(true)
    const again = slot('blue')
    expect(again.map(c => c.id)).toEqual(blue.map(c => c.id))
    expect(again[0].started).not.toBe(blue[0].started)
    // warm 0: the old slot is stopped after the drain, as before
    expect(slot('green').map(c => c.running)).toEqual([false])
    expect(kept()).toEqual([`green ${releaseOf('v2')}`])
  }, 240_000)

  it('a deploy inside the window replaces the warm slot; the earlier timer leaves the next one alone', async () => {
    // v2 kept warm for 3 s in green
    expect((await rollback(back(3))).status).toBe('rolled-back')
    expect((await rollback(back(3))).status).toBe('rolled-back')
    expect(await served()).toBe('v1')
    const t3 = token()
    expect(kept()[0]).toBe(`green ${releaseOf('v2')}`)
    // v3 goes to green: the warm v2 is stopped first, then replaced; v1 is kept warm for 60 s
    const r = await deploy(options('v3', 60))
    expect(r.error).toBeUndefined()
    expect(await served()).toBe('v3')
    const t4 = token()
    expect(t4).not.toBe(t3)
    expect(kept()[0]).toBe(`blue ${releaseOf('v1')}`)
    // the first timer wakes up, finds another window's record and changes nothing
    await until('the first timer ended', () => timers(t3) === 0)
    expect(slot('blue').map(c => c.running)).toEqual([true])
    expect(token()).toBe(t4)
    expect(timers(t4)).toBe(1)
    expect(lockFree()).toBe(true)
  }, 240_000)

  it('the link lost right after the switch: the deploy stands, the lock goes, the window still ends', async () => {
    const cut = await startTcpCut(sshd.port)
    const before = token()
    try {
      const r = await deploy({
        ...options('v2', 2),
        version: 'v2-cut',
        connect: sshFleet(sshd, cut).connect,
        onStep: e => {
          if (e.step === 'switch' && e.phase === 'end') cut.cut()
        }
      })
      expect(cut.cuts().length).toBe(1)
      expect(['deployed', 'failed']).toContain(r.status)
    } finally {
      await cut.stop()
    }
    await until('the lock is free', lockFree)
    expect(ledgerEvents(path).pop()).toBe('deploy v2-cut')
    expect(current()).toBe(`releases/${releaseOf('v2-cut')}`)
    expect(await served()).toBe('v2')
    // v3 (in green) kept warm for 2 s by the close step itself: the timer ends it with no runner
    const t = token()
    expect(t).not.toBe(before)
    expect(kept()[0]).toBe(`green ${releaseOf('v3')}`)
    await until('the warm window of the green slot ended', () => timers(t) === 0)
    expect(slot('green').map(c => c.running)).toEqual([false])
    expect(kept()).toEqual([`green ${releaseOf('v3')}`])
    // the timer of the window before (v1 in blue, 60 s) is left alone by the deploy: its record is gone
    expect((await deploy(options('v1', 0))).status).toBe('deployed')
    expect(await served()).toBe('v1')
  }, 240_000)

  it('a damaged or missing kept record: the rollback starts the slot the usual way and serves', async () => {
    // v1 live in green, v2-cut stopped and kept in blue
    expect(kept()[0]).toBe(`blue ${releaseOf('v2-cut')}`)
    writeFileSync(`${state}/kept`, 'bl\u0000ue 2026\n')
    const r1 = await rollback(back(30))
    expect(r1.error).toBeUndefined()
    expect(r1.status).toBe('rolled-back')
    expect(await served()).toBe('v2')
    expect(kept()[0]).toBe(`green ${releaseOf('v1')}`)
    rmSync(`${state}/kept`)
    const r2 = await rollback(back(0))
    expect(r2.status).toBe('rolled-back')
    expect(await served()).toBe('v1')
    expect(lockFree()).toBe(true)
    expect(ledgerEvents(path).slice(-2)).toEqual(['rollback v2-cut', 'rollback v1'])
  }, 240_000)

  it('the link lost in a rollback to the warm slot, after it was found running: the live release stays', async () => {
    expect((await deploy(options('v2', 30))).status).toBe('deployed')
    expect(await served()).toBe('v2')
    expect(kept()[0]).toBe(`green ${releaseOf('v1')}`)
    const cut = await startTcpCut(sshd.port)
    try {
      const r = await rollback({
        ...back(30),
        connect: sshFleet(sshd, cut).connect,
        onStep: e => {
          if (e.step === 'health' && e.phase === 'start') cut.cut()
        }
      })
      expect(cut.cuts().length).toBe(1)
      expect(r.status).not.toBe('rolled-back')
    } finally {
      await cut.stop()
    }
    await until('the lock is free', lockFree)
    expect(logs.some(m => /v1 was kept warm in green: still running/.test(m))).toBe(true)
    // the lock holder's recovery: v2 serves and is current, the ledger says so
    expect(ledgerEvents(path).pop()).toBe('recovered v2')
    expect(current()).toBe(`releases/${releaseOf('v2')}`)
    for (let i = 0; i < 10; i++) expect(await served()).toBe('v2')
    // and the next rollback works
    const again = await rollback(back(0))
    expect(again.status).toBe('rolled-back')
    expect(await served()).toBe('v1')
    expect(lockFree()).toBe(true)
  }, 240_000)
})

/**
 * Blue-green on real parts: the local Docker engine and docker-compose, a real nginx (src/testkit/nginx.ts)
 * in front, steady load through it (src/testkit/load.ts) while releases switch. The host is this machine
 * through localRemote (the SSH path is covered by the deploy tests; here the strategy is under test).
 * The strategy inputs as plain units: options.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { layout, type ComposeKind } from '../../src/lib/compose/layout.js'
import { BlueGreen, upstreamName } from '../../src/lib/strategy/blue-green.js'
import { parseSlotPorts, type BlueGreenConfig } from '../../src/lib/strategy/options.js'
import { buildAppImage, removeImages } from '../../src/testkit/images.js'
import { startLoad } from '../../src/testkit/load.js'
import { localRemote } from '../../src/testkit/local-remote.js'
import { freePort, uniqueName } from '../../src/testkit/net.js'
import { startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { losses, removeProjects } from './helpers.js'

describe('blue-green on docker + nginx', () => {
  const id = uniqueName('bg')
  const repo = `shipline-test/${id}`
  const path = mkdtempSync(join(tmpdir(), 'shipline-bg-'))
  const L = layout(path)
  let kind: ComposeKind = 'v1'
  let nginx: Nginx
  let cfg: BlueGreenConfig
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  const host = () => ({ remote: localRemote('local'), layout: L, compose: kind, log, label: 'local' })

  /** a release folder as deploy writes it (only the compose file matters to the strategy) */
  // versions unique to this run: an image with the same content as another suite's would share its image
  // id, and that suite's `docker rmi -f <id>` would take ours away
  const V = (v: string) => `${v}-${id}`
  const release = (version: string, tag: string, mem = '32m') => {
    const rid = `20260101T000000000Z-${version}`
    mkdirSync(L.release(rid), { recursive: true })
    writeFileSync(
      join(L.release(rid), 'docker-compose.yml'),
      `services:\n  app:\n    image: ${repo}:${tag}\n    ports: ["127.0.0.1:\${SHIPLINE_PORT}:8080"]\n    mem_limit: ${mem}\n    network_mode: bridge\n`
    )
    return { id: rid, version, files: ['docker-compose.yml'], env: false }
  }

  beforeAll(async () => {
    try {
      execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' })
      kind = 'v2'
    } catch {
      kind = 'v1'
    }
    buildAppImage({ tag: `${repo}:v1`, version: V('v1') })
    buildAppImage({ tag: `${repo}:v2`, version: V('v2') })
    buildAppImage({ tag: `${repo}:bad`, version: V('bad'), healthy: false })
    mkdirSync(`${L.state}/nginx`, { recursive: true, mode: 0o700 })
    nginx = await startNginx({ includeFile: `${L.state}/nginx/app.conf`, upstreamName: upstreamName('app') })
    const [a, b] = [await freePort(), await freePort()]
    cfg = {
      ports: parseSlotPorts(`app=${a},${b}`),
      testCommand: nginx.testCommand,
      reloadCommand: nginx.reloadCommand,
      drainSeconds: 1,
      minFreeMiB: 16
    }
  }, 120_000)

  afterAll(async () => {
    removeProjects(`${L.project}-blue`, `${L.project}-green`)
    await nginx?.stop()
    removeImages(`${repo}:v1`, `${repo}:v2`, `${repo}:bad`)
    rmSync(path, { recursive: true, force: true })
  })

  it('switches releases under load without a failed request; a bad release or a failing nginx -t leaves the old slot serving', async () => {
    const bg = new BlueGreen(host(), cfg, { healthTimeout: 60, stableSeconds: 1 })
    const v1 = release('v1', 'v1')
    const first = await bg.activate(v1)
    expect(first).toMatchObject({ ok: true, slot: 'blue' })
    expect((await (await fetch(`${nginx.url}/version`)).text()).trim()).toBe(V('v1'))

    const load = startLoad({ url: `${nginx.url}/version`, rate: 40 })
    const second = await bg.activate(release('v2', 'v2'))
    expect(second).toMatchObject({ ok: true, slot: 'green', previousSlot: 'blue' })
    // the old slot is gone after the drain
    const blue = execFileSync(
      'docker',
      ['ps', '-q', '--filter', `label=com.docker.compose.project=${L.project}-blue`],
      {
        encoding: 'utf8'
      }
    )
    expect(blue.trim()).toBe('')

    const bad = await bg.activate(release('bad', 'bad'))
    expect(bad.ok).toBe(false)
    expect(bad.slot).toBe('green')
    expect(bad.logs).toMatch(/logs app/)
    expect(readFileSync(`${L.state}/slot`, 'utf8')).toMatch(/^green /)

    const broken = new BlueGreen(
      host(),
      { ...cfg, testCommand: `${nginx.testCommand} && false` },
      { healthTimeout: 60 }
    )
    const untested = await broken.activate(v1)
    expect(untested).toMatchObject({ ok: false, result: 'nginx-test', slot: 'green' })
    expect(untested.nginx).toMatch(/failed/)
    expect(readFileSync(`${L.state}/nginx/app.conf`, 'utf8')).toContain(
      `127.0.0.1:${cfg.ports.get('app')![1]}`
    )

    const back = await bg.activate(v1)
    expect(back).toMatchObject({ ok: true, slot: 'blue' })
    const res = await load.stop()
    expect(res.sent).toBeGreaterThan(0)
    expect(losses(res)).toEqual({
      bad: 0,
      non2xx: {},
      failed: {}
    })
    expect(Object.keys(res.bodies).sort()).toEqual([V('v1'), V('v2')])
    expect((await (await fetch(`${nginx.url}/version`)).text()).trim()).toBe(V('v1'))
  }, 240_000)

  it('refuses to start a second copy when the host lacks the memory, before changing anything', async () => {
    const before = readFileSync(`${L.state}/slot`, 'utf8')
    const bg = new BlueGreen(host(), { ...cfg, minFreeMiB: 1024 * 1024 * 64 }, { healthTimeout: 30 })
    await expect(bg.activate(release('v2', 'v2'))).rejects.toThrow(
      /not enough free memory .* MiB available, \d+ MiB needed by min-free-memory/
    )
    const huge = new BlueGreen(host(), cfg, { healthTimeout: 30 })
    await expect(huge.activate(release('v2big', 'v2', '64t'))).rejects.toThrow(
      /needed by memory limits \(app /
    )
    expect(readFileSync(`${L.state}/slot`, 'utf8')).toBe(before)
    expect((await (await fetch(`${nginx.url}/version`)).text()).trim()).toBe(V('v1'))
  }, 60_000)
})

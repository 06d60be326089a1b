/**
 * probe-checks on real parts (sshd, registry, dockerd, docker-compose, nginx): smoke-test's checks run
 * through the SSH connection against the idle blue-green slot before nginx is switched, and against the
 * service's host port right after `up` for recreate. A release that is healthy to Docker but fails the probe
 * (no /readyz, broken /metrics) changes nothing live (blue-green: the idle slot is removed; recreate: the
 * previous release is put back), the ledger says so with the probe's figures, and the next deploy works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy } from '../../src/lib/deploy/index.js'
import type { DeployOptions } from '../../src/lib/deploy/types.js'
import { parseChecks } from '../../src/lib/smoke/checks.js'
import type { ProbeOptions } from '../../src/lib/smoke/probe.js'
import { slotProject, upstreamName } from '../../src/lib/strategy/blue-green.js'
import { projectName } from '../../src/lib/compose/layout.js'
import { startLoad } from '../../src/testkit/load.js'
import { freePort, uniqueName } from '../../src/testkit/net.js'
import { blueGreenBehind, startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { sshFleet, startSshd, type Sshd } from '../../src/testkit/sshd.js'
import {
  deployCommon,
  lastEntry as lastEntryOf,
  ledgerEvents,
  losses,
  pushApps,
  teardown,
  webCompose
} from './helpers.js'

type Entry = { event: string; version: string; probe?: { passed: boolean; port: number; checks: string[] } }
const lastEntry = (path: string): Entry => lastEntryOf<Entry>(path)

const VERSIONS = ['v1', 'v2', 'notready', 'badmetrics'] as const

describe('probe before the switch', () => {
  let reg: TestRegistry
  let sshd: Sshd
  let nginx: Nginx
  const base = mkdtempSync(join(tmpdir(), 'shipline-probe-'))
  const run = uniqueName('p')
  let image = ''
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  const probe = (extra: Partial<ProbeOptions> = {}): ProbeOptions => ({
    checks: parseChecks(''),
    timeoutSec: 5,
    requestTimeoutSec: 2,
    ...extra
  })
  const common = (path: string, compose: string): Omit<DeployOptions, 'images' | 'version'> =>
    deployCommon({ link: sshFleet(sshd), path, log, composeFile: compose, registryUrl: reg.url })
  const paths: string[] = []

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' })
    sshd = await startSshd()
    image = `${reg.host}/${run.toLowerCase()}`
    pushApps(image, run, VERSIONS, v => ({
      ready: v !== 'notready',
      ...(v === 'badmetrics' ? { metrics: '# TYPE app_up gauge\napp_up{ 1\n' } : {})
    }))
  }, 180_000)

  afterAll(() =>
    teardown({ paths, parts: [nginx, sshd, reg], images: VERSIONS.map(v => `${image}:${v}`), dir: base })
  )

  it('blue-green: the idle slot is probed before nginx switches; a failing probe removes it and nothing live changes', async () => {
    const path = `${base}/bg`
    paths.push(path)
    mkdirSync(`${path}/nginx`, { recursive: true })
    nginx = await startNginx({ includeFile: `${path}/nginx/web.conf`, upstreamName: upstreamName('web') })
    const [a, b] = [await freePort(), await freePort()]
    const opts = {
      ...common(path, webCompose(base, '${SHIPLINE_PORT}')),
      probe: probe(),
      runtime: blueGreenBehind(nginx, {
        ports: `web=${a},${b}`,
        includeDir: `${path}/nginx`,
        drainSeconds: 1
      })
    }
    const version = async () => (await (await fetch(`${nginx.url}/version`)).text()).trim().split('_')[0]
    const slotContainers = () =>
      ['blue', 'green'].flatMap(s =>
        execFileSync(
          'docker',
          [
            'ps',
            '-a',
            '--format',
            '{{.Image}}',
            '--filter',
            `label=com.docker.compose.project=${slotProject(projectName(path), s as 'blue')}`
          ],
          { encoding: 'utf8' }
        )
          .trim()
          .split('\n')
          .filter(Boolean)
      )

    const r1 = await deploy({ ...opts, images: [`web=${image}:v1`], version: 'v1' })
    expect(r1.error).toBeUndefined()
    expect(r1.status).toBe('deployed')
    expect(lastEntry(path)).toMatchObject({ event: 'deploy', version: 'v1', probe: { passed: true } })
    expect(lastEntry(path).probe?.checks).toHaveLength(3)
    expect(await version()).toBe('v1')

    const load = startLoad({ url: `${nginx.url}/version`, rate: 40 })
    const r2 = await deploy({ ...opts, images: [`web=${image}:notready`], version: 'notready' })
    expect(r2.status).toBe('rolled-back')
    expect(r2.error).toMatch(/probe of port \d+ failed: \/readyz 404/)
    expect(await version()).toBe('v1')
    // the idle slot is gone: only v1's container is left in the slots
    expect(slotContainers().every(i => !i.includes('notready'))).toBe(true)
    expect(lastEntry(path)).toMatchObject({ event: 'auto-rollback', version: 'v1', probe: { passed: false } })

    const r3 = await deploy({ ...opts, images: [`web=${image}:badmetrics`], version: 'badmetrics' })
    expect(r3.status).toBe('rolled-back')
    expect(r3.error).toMatch(/\/metrics 200 FAILED/)
    expect(await version()).toBe('v1')

    const r4 = await deploy({ ...opts, images: [`web=${image}:v2`], version: 'v2' })
    expect(r4.status).toBe('deployed')
    expect(await version()).toBe('v2')
    const res = await load.stop()
    expect(res.sent).toBeGreaterThan(0)
    expect(losses(res)).toEqual({
      bad: 0,
      non2xx: {},
      failed: {}
    })
    expect(ledgerEvents(path)).toEqual(['deploy v1', 'auto-rollback v1', 'auto-rollback v1', 'deploy v2'])
  }, 300_000)

  it('recreate: the probe runs on the host port right after up; a failing one puts the previous release back', async () => {
    const path = `${base}/rc`
    paths.push(path)
    const port = await freePort()
    const opts = { ...common(path, webCompose(join(base), String(port))), probe: probe({ port }) }
    const version = async () =>
      (await (await fetch(`http://127.0.0.1:${port}/version`)).text()).trim().split('_')[0]

    const r1 = await deploy({ ...opts, images: [`web=${image}:v1`], version: 'v1' })
    expect(r1.error).toBeUndefined()
    expect(lastEntry(path)).toMatchObject({ event: 'deploy', probe: { passed: true, port } })

    const r2 = await deploy({ ...opts, images: [`web=${image}:notready`], version: 'notready' })
    expect(r2.status).toBe('rolled-back')
    expect(r2.error).toMatch(/did not turn healthy .*probe of port \d+ failed: \/readyz 404/)
    expect(await version()).toBe('v1')
    expect(lastEntry(path)).toMatchObject({ event: 'auto-rollback', version: 'v1', probe: { passed: false } })

    const r3 = await deploy({ ...opts, images: [`web=${image}:v2`], version: 'v2' })
    expect(r3.status).toBe('deployed')
    expect(await version()).toBe('v2')
    expect(ledgerEvents(path)).toEqual(['deploy v1', 'auto-rollback v1', 'deploy v2'])
  }, 300_000)
})

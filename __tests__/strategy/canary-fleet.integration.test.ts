/**
 * The weighted canary across a fleet of two hosts, on real parts: two sshd on loopback (the fleet fixture
 * of __tests__/fleet/fleet-hosts.ts: each host its own project path and Compose projects), the one
 * registry, dockerd and docker-compose, and per host its own nginx and its own blue-green ports. Steady
 * bounded load through each host's nginx (loopback) feeds the error-ratio rule.
 *
 * - a good release walks 10 → 50% on the first (canary) host, then on the second: both serve it, both
 *   journals and `current` name it, both hosts' results carry their canary record;
 * - a release answering 500 to every 10th request is caught on the first host at its first step; the
 *   second host is never touched (no remote step but its lock and unlock; journal, `current`, releases
 *   and nginx include as before; it still serves the live release);
 * - the next good release goes to both.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy } from '../../src/lib/deploy/index.js'
import type { DeployOptions, DeployResult, StepEvent } from '../../src/lib/deploy/types.js'
import { parseCanary, type CanaryRecord } from '../../src/lib/strategy/canary.js'
import { slotProject, upstreamName } from '../../src/lib/strategy/blue-green.js'
import type { MakeRuntime } from '../../src/lib/runtime/runtime.js'
import { startLoad, type Load } from '../../src/testkit/load.js'
import { freePort, sleep, uniqueName } from '../../src/testkit/net.js'
import { blueGreenBehind, startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { startFleet, type SandboxFleet } from '../fleet/fleet-hosts.js'
import {
  deployCommon,
  lastEntry,
  ledgerEvents,
  pushApps,
  removeProjects,
  teardown,
  webCompose
} from './helpers.js'

type Entry = { event: string; version: string; canary?: CanaryRecord }

const VERSIONS = ['v1', 'v2', 'errs', 'v3'] as const
const RULE = 'errors: http_requests_total{code=~"5.."} / http_requests_total < 1%'
/**
 * requests per second through each host's nginx. Host 1's is what catches the bad release: ~16 requests
 * reach the new slot in a 10% step of 2 s, and any 10 in a row hold a 500; host 2 only needs some.
 */
const RATES = [80, 30]

describe('canary across a fleet of two hosts (nginx)', () => {
  let reg: TestRegistry
  let fleet: SandboxFleet
  const fronts: Nginx[] = []
  const makers: MakeRuntime[] = []
  const base = mkdtempSync(join(tmpdir(), 'shipline-canary-fleet-'))
  const run = uniqueName('cf')
  const path = `${base}/app`
  let image = ''
  let compose = ''
  const logs: string[] = []
  const ts = (): string => new Date().toISOString().slice(11, 23)
  const log = {
    info: (m: string) => logs.push(`${ts()} ${m}`),
    warning: (m: string) => logs.push(`${ts()} WARN ${m}`)
  }
  /** remote steps per host label of the last deploy */
  let steps = new Map<string, string[]>()
  let loads: Load[] = []

  const options = (version: string, canary: boolean): DeployOptions => {
    steps = new Map(fleet.labels.map(l => [l, []]))
    return {
      ...deployCommon({
        link: { hosts: fleet.labels, connect: label => fleet.connect(label) },
        path,
        log,
        composeFile: compose,
        registryUrl: reg.url
      }),
      images: [`web=${image}:${version}`],
      version,
      onStep: (e: StepEvent) => {
        if (e.phase === 'start') steps.get(e.host)!.push(e.step)
      },
      // each host its own nginx, include folder and slot ports: the runtime is picked by the host's label
      runtime: store => {
        const i = fleet.labels.indexOf(store.label)
        if (i < 0) throw new Error(`no runtime for ${store.label}`)
        return makers[i](store)
      },
      ...(canary
        ? {
            canary: parseCanary(
              {
                steps: '10,50,100',
                intervalSec: 2,
                rules: RULE,
                service: '',
                metricsPath: '/cgi-bin/metrics',
                noData: 'pass'
              },
              { strategy: 'blue-green', slotServices: ['web'] }
            )
          }
        : {})
    }
  }

  const served = async (i: number): Promise<string> =>
    (await (await fetch(`${fronts[i].url}/version`, { signal: AbortSignal.timeout(3000) })).text())
      .trim()
      .split('_')[0]
  const servedBoth = (): Promise<string[]> => Promise.all([0, 1].map(served))
  const current = (i: number): string => readlinkSync(`${fleet.hosts[i].path}/.shipline/current`)
  const ledgerText = (i: number): string =>
    readFileSync(`${fleet.hosts[i].path}/.shipline/ledger.jsonl`, 'utf8')
  const slotImages = (i: number): string[] =>
    (['blue', 'green'] as const).flatMap(s =>
      execFileSync(
        'docker',
        [
          'ps',
          '-a',
          '--format',
          '{{.Image}}',
          '--filter',
          `label=com.docker.compose.project=${slotProject(fleet.hosts[i].project, s)}`
        ],
        { encoding: 'utf8' }
      )
        .trim()
        .split('\n')
        .filter(Boolean)
    )
  const includeFile = (i: number): string => `${base}/nginx-h${i}/web.conf`
  const hostState = (i: number) => ({
    ledger: ledgerText(i),
    current: current(i),
    releases: readdirSync(`${fleet.hosts[i].path}/.shipline/releases`).sort(),
    include: readFileSync(includeFile(i), 'utf8'),
    slots: slotImages(i).sort()
  })
  const onBoth = async (r: DeployResult, version: string): Promise<void> => {
    expect(r.error).toBeUndefined()
    expect(r.status).toBe('deployed')
    expect(r.hosts.map(h => h.status)).toEqual(['deployed', 'deployed'])
    await sleep(300)
    expect(await servedBoth()).toEqual([version, version])
    for (const i of [0, 1]) {
      expect(current(i)).toBe(`releases/${r.releaseId}`)
      expect(lastEntry<Entry>(fleet.hosts[i].path)).toMatchObject({ event: 'deploy', version })
    }
  }
  const walked = (r: DeployResult): void => {
    for (const [i, h] of r.hosts.entries()) {
      expect(h.canary?.ok).toBe(true)
      expect(h.canary?.record).toMatchObject({ proxy: 'nginx', passed: true })
      expect(h.canary!.record.steps.map(s => s.percent)).toEqual([10, 50])
      expect(h.canary!.record.steps.every(s => s.passed && s.rules.length === 1)).toBe(true)
      expect(lastEntry<Entry>(fleet.hosts[i].path).canary).toEqual(h.canary!.record)
    }
  }

  beforeAll(async () => {
    ;[reg, fleet] = await Promise.all([startRegistry({ auth: 'none' }), startFleet(2, path)])
    image = `${reg.host}/${run.toLowerCase()}`
    pushApps(image, run, VERSIONS, v => ({ work: v === 'errs' ? { failEvery: 10 } : {} }))
    compose = webCompose(base, '${SHIPLINE_PORT}', '64m')
    for (const i of [0, 1]) {
      const ports = [await freePort(), await freePort()]
      mkdirSync(`${base}/nginx-h${i}`, { recursive: true })
      // the first deploy goes to the blue slot: each nginx starts pointing there
      const nginx = await startNginx({
        includeFile: includeFile(i),
        upstreamName: upstreamName('web'),
        initialPort: ports[0]
      })
      fronts.push(nginx)
      makers.push(
        blueGreenBehind(nginx, {
          ports: `web=${ports[0]},${ports[1]}`,
          includeDir: `${base}/nginx-h${i}`,
          drainSeconds: 1
        })
      )
    }
  }, 120_000)

  afterAll(async () => {
    await Promise.all(loads.map(l => l.stop()))
    for (const h of fleet?.hosts ?? [])
      removeProjects(h.project, slotProject(h.project, 'blue'), slotProject(h.project, 'green'))
    await teardown({
      paths: [],
      parts: [...fronts, fleet, reg],
      images: VERSIONS.map(v => `${image}:${v}`),
      dir: base
    })
  }, 60_000)

  it('a good release walks the canary on host 1, then on host 2; both serve it', async () => {
    const r1 = await deploy(options('v1', false))
    await onBoth(r1, 'v1')

    loads = fronts.map((f, i) =>
      startLoad({ url: `${f.url}/cgi-bin/work`, rate: RATES[i], keepAlive: true, maxMs: 120_000 })
    )
    const r2 = await deploy(options('v2', true))
    await onBoth(r2, 'v2')
    walked(r2)
    // host 1 walked and switched before host 2 began its walk
    const at = (label: string, text: string): number =>
      logs.findIndex(l => l.includes(`${label}: `) && l.includes(text))
    const switched1 = at(fleet.labels[0], `current → ${r2.releaseId}`)
    expect(switched1).toBeGreaterThan(at(fleet.labels[0], 'canary: 50%'))
    expect(at(fleet.labels[1], 'canary: 10%')).toBeGreaterThan(switched1)
    for (const i of [0, 1]) expect(ledgerEvents(fleet.hosts[i].path)).toEqual(['deploy v1', 'deploy v2'])
  }, 90_000)

  it('a release with 10% errors is caught on the canary host at 10%; the second host is never touched', async () => {
    const before = hostState(1)
    const r = await deploy(options('errs', true))
    expect(r.status).toBe('rolled-back')
    expect(r.version).toBe('v2')
    expect(r.hosts.map(h => h.status)).toEqual(['rolled-back', 'skipped'])
    expect(r.error).toMatch(/canary 10%: metrics gate failed: errors 0\.\d+ \(\d+\/\d+\) > 0\.01/)
    expect(r.error).toMatch(/all traffic went back to the live slot/)

    // host 1: back on v2, the journal says why with the step's figures, the new slot is gone
    const e = lastEntry<Entry>(fleet.hosts[0].path)
    expect(e).toMatchObject({ event: 'auto-rollback', version: 'v2', canary: { passed: false } })
    expect(e.canary!.steps).toHaveLength(1)
    expect(e.canary!.steps[0].rules.find(x => x.id === 'errors')?.verdict).toBe('fail')
    expect(r.hosts[0].canary?.record).toEqual(e.canary)
    expect(slotImages(0).some(i => i.endsWith(':errs'))).toBe(false)

    // host 2: locked and let go, nothing else
    expect(steps.get(fleet.labels[1])).toEqual(['lock', 'finish'])
    expect(r.hosts[1].canary).toBeUndefined()
    expect(hostState(1)).toEqual(before)
    await sleep(300)
    for (let i = 0; i < 10; i++) expect(await servedBoth()).toEqual(['v2', 'v2'])
    expect(ledgerEvents(fleet.hosts[0].path)).toEqual(['deploy v1', 'deploy v2', 'auto-rollback v2'])
    expect(ledgerEvents(fleet.hosts[1].path)).toEqual(['deploy v1', 'deploy v2'])
  }, 60_000)

  it('the next good release goes to both hosts', async () => {
    const r = await deploy(options('v3', true))
    await onBoth(r, 'v3')
    walked(r)
    expect(ledgerEvents(fleet.hosts[0].path)).toEqual([
      'deploy v1',
      'deploy v2',
      'auto-rollback v2',
      'deploy v3'
    ])
    expect(ledgerEvents(fleet.hosts[1].path)).toEqual(['deploy v1', 'deploy v2', 'deploy v3'])

    const [res0, res1] = await Promise.all(loads.map(l => l.stop()))
    loads = []
    for (const [i, res] of [res0, res1].entries()) expect(res.sent).toBeGreaterThan(RATES[i] * 10)
    // the only 5xx the clients saw are the caught release's, on host 1, at its 10% share for one step
    expect(Object.keys(res0.non2xx).filter(k => k !== '500')).toEqual([])
    expect(res0.non2xx['500'] ?? 0).toBeLessThan(20)
    expect(res1.non2xx).toEqual({})
    console.log(
      `canary fleet: ${JSON.stringify([res0, res1].map(x => ({ ...x, bodies: undefined })))}\n${logs.join('\n')}`
    )
  }, 60_000)
})

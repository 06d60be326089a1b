/**
 * The weighted canary on real parts (sshd, registry, dockerd, docker-compose) behind each real proxy
 * (nginx, haproxy, caddy), under steady keep-alive load through the proxy (loopback, bounded):
 *
 * - a good release walks 5 → 25 → 50 → 100% with its metrics gated at each step: 0 failed requests on
 *   haproxy (runtime API); on nginx and caddy no 5xx and at most one reset per change (an nginx reload
 *   closes its old workers' idle keep-alive connections, and so does caddy's config replacement; bare
 *   nginx reloads are measured in the same run for the record);
 * - a release answering 500 to every 10th request is caught by the error-ratio rule at the first step:
 *   all traffic goes back to the live slot, the new slot is removed, the ledger says so with the numbers;
 * - a release that sleeps 300 ms is caught by the p95 rule at the first step;
 * - the next deploy works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy } from '../../src/lib/deploy/index.js'
import type { DeployOptions } from '../../src/lib/deploy/types.js'
import { parseCanary } from '../../src/lib/strategy/canary.js'
import { slotProject, upstreamName } from '../../src/lib/strategy/blue-green.js'
import { runtimeFactory } from '../../src/lib/strategy/host.js'
import { parseSlotPorts } from '../../src/lib/strategy/options.js'
import type { ProxyConfig } from '../../src/lib/proxy/index.js'
import type { CanaryRecord } from '../../src/lib/strategy/canary.js'
import { projectName } from '../../src/lib/compose/layout.js'
import { startLoad } from '../../src/testkit/load.js'
import { freePort, sleep, uniqueName } from '../../src/testkit/net.js'
import { startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { startHaproxy } from '../../src/testkit/haproxy.js'
import { startCaddy } from '../../src/testkit/caddy.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { sshFleet, startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { startTcpCut } from '../../src/testkit/tcp-cut.js'
import {
  deployCommon,
  lastEntry as lastEntryOf,
  ledgerEvents,
  pushApps,
  teardown,
  webCompose
} from './helpers.js'

type Entry = { event: string; version: string; reason?: string; canary?: CanaryRecord }
const lastEntry = (path: string): Entry => lastEntryOf<Entry>(path)

const VERSIONS = ['v1', 'v2', 'errs', 'slow'] as const
const RULES = [
  'errors: http_requests_total{code=~"5.."} / http_requests_total < 1%',
  'p95: http_request_duration_seconds < 250ms'
].join('\n')
const RATE = 100

/** A proxy in front of the slots: its config for the runtime, its URL, how to stop it, a bare reload. */
interface Front {
  url: string
  proxy: ProxyConfig
  nginx?: Nginx
  stop(): Promise<void>
}

describe.each(['nginx', 'haproxy', 'caddy'] as const)('canary behind %s', name => {
  let reg: TestRegistry
  let sshd: Sshd
  let front: Front | undefined
  const base = mkdtempSync(join(tmpdir(), `shipline-canary-${name}-`))
  const run = uniqueName(`c${name[0]}`)
  const path = `${base}/app`
  let image = ''
  const logs: string[] = []
  const ts = (): string => new Date().toISOString().slice(11, 23)
  const log = {
    info: (m: string) => logs.push(`${ts()} ${m}`),
    warning: (m: string) => logs.push(`${ts()} WARN ${m}`)
  }
  let ports: [number, number] = [0, 0]

  const options = (version: string, canary: boolean): DeployOptions => ({
    ...deployCommon({
      link: sshFleet(sshd),
      path,
      log,
      composeFile: join(base, 'docker-compose.yml'),
      registryUrl: reg.url
    }),
    images: [`web=${image}:${version}`],
    version,
    runtime: runtimeFactory({
      strategy: 'blue-green',
      target: 'compose',
      blueGreen: {
        ports: parseSlotPorts(`web=${ports[0]},${ports[1]}`),
        includeDir: `${path}-nginx`,
        testCommand: front?.nginx?.testCommand ?? 'true',
        reloadCommand: front?.nginx?.reloadCommand ?? 'true',
        drainSeconds: 1,
        minFreeMiB: 16,
        proxy: front!.proxy
      }
    })!,
    ...(canary
      ? {
          canary: parseCanary(
            {
              steps: '5,25,50,100',
              intervalSec: 3,
              rules: RULES,
              service: '',
              metricsPath: '/cgi-bin/metrics',
              noData: 'pass'
            },
            { strategy: 'blue-green', slotServices: ['web'] }
          )
        }
      : {})
  })

  const served = async (): Promise<string> =>
    (await (await fetch(`${front!.url}/cgi-bin/work`)).text()).trim().split('_')[0]
  const slotImages = (): string[] =>
    (['blue', 'green'] as const).flatMap(s =>
      execFileSync(
        'docker',
        [
          'ps',
          '--format',
          '{{.Image}}',
          '--filter',
          `label=com.docker.compose.project=${slotProject(projectName(path), s)}`
        ],
        { encoding: 'utf8' }
      )
        .trim()
        .split('\n')
        .filter(Boolean)
    )

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' })
    sshd = await startSshd()
    image = `${reg.host}/${run.toLowerCase()}`
    pushApps(image, run, VERSIONS, v => ({
      work: v === 'errs' ? { failEvery: 10 } : v === 'slow' ? { delaySec: 0.3 } : {}
    }))
    ports = [await freePort(), await freePort()]
    webCompose(base, '${SHIPLINE_PORT}', '64m')
    mkdirSync(`${path}-nginx`, { recursive: true })
    // the first deploy goes to the blue slot: each proxy starts pointing there
    if (name === 'nginx') {
      const nginx = await startNginx({
        includeFile: `${path}-nginx/web.conf`,
        upstreamName: upstreamName('web'),
        initialPort: ports[0]
      })
      front = { url: nginx.url, proxy: { name: 'nginx' }, nginx, stop: () => nginx.stop() }
    } else if (name === 'haproxy') {
      const hx = await startHaproxy({ backends: [{ name: upstreamName('web'), initialPort: ports[0] }] })
      front = { url: hx.url, proxy: { name: 'haproxy', socket: hx.socket }, stop: () => hx.stop() }
    } else {
      const cd = await startCaddy({ id: upstreamName('web'), initialPort: ports[0] })
      front = { url: cd.url, proxy: { name: 'caddy', admin: cd.admin }, stop: () => cd.stop() }
    }
  }, 240_000)

  afterAll(() =>
    teardown({
      paths: [path],
      parts: [front, sshd, reg],
      images: VERSIONS.map(v => `${image}:${v}`),
      dir: base
    })
  )

  it('walks a good release to 100% dropping nothing; catches 10% 5xx and a p95 regression at 5%', async () => {
    const r1 = await deploy(options('v1', false))
    expect(r1.error).toBeUndefined()
    expect(await served()).toBe('v1')

    const load = startLoad({ url: `${front!.url}/cgi-bin/work`, rate: RATE, keepAlive: true, maxMs: 240_000 })
    let bare: Record<string, number> = {}
    if (front!.nginx) {
      // what bare reloads cost under this load, for the record: as many as the canary does (3 steps + switch)
      const before = load.snapshot()
      for (let i = 0; i < 4; i++) {
        execFileSync('sh', ['-c', front!.nginx.reloadCommand])
        await sleep(1500)
      }
      const after = load.snapshot()
      bare = Object.fromEntries(
        Object.entries(after.failed).map(([k, v]) => [k, v - (before.failed[k] ?? 0)])
      )
    }
    const good0 = load.snapshot()
    const r2 = await deploy(options('v2', true))
    await sleep(500)
    const good1 = load.snapshot()
    expect(r2.error).toBeUndefined()
    expect(r2.status).toBe('deployed')
    expect(await served()).toBe('v2')
    const e2 = lastEntry(path)
    expect(e2).toMatchObject({ event: 'deploy', version: 'v2', canary: { proxy: name, passed: true } })
    expect(e2.canary!.steps.map(s => s.percent)).toEqual([5, 25, 50])
    expect(e2.canary!.steps.every(s => s.rules.length === 2 && s.passed)).toBe(true)
    // v2 took traffic during the walk: its share rose step by step
    expect(r2.hosts[0].canary?.figures).toHaveLength(3)
    const goodNon2xx = Object.entries(good1.non2xx).filter(([k, v]) => v !== (good0.non2xx[k] ?? 0))
    expect(goodNon2xx).toEqual([])
    const goodFailed = Object.fromEntries(
      Object.entries(good1.failed)
        .map(([k, v]) => [k, v - (good0.failed[k] ?? 0)] as const)
        .filter(([, v]) => v > 0)
    )
    if (name !== 'haproxy') {
      // an nginx reload closes the idle keep-alive connections of its old workers; a caddy config change
      // replaces the server (Go's Shutdown closes idle keep-alive connections): at most a reset per change
      expect(Object.keys(goodFailed).filter(k => k !== 'ECONNRESET')).toEqual([])
      expect(goodFailed.ECONNRESET ?? 0).toBeLessThanOrEqual(4)
      console.log(
        `${name}: canary walk ${JSON.stringify(goodFailed)}, 4 bare nginx reloads ${JSON.stringify(bare)}`
      )
    } else expect(goodFailed).toEqual({})

    // a release answering 500 to every 10th request: caught at 5%, all back to v2
    const r3 = await deploy(options('errs', true))
    expect(r3.status).toBe('rolled-back')
    expect(r3.error).toMatch(/canary 5%: metrics gate failed: errors 0\.\d+ \(\d+\/\d+\) > 0\.01/)
    expect(r3.error).toMatch(/all traffic went back to the live slot/)
    const e3 = lastEntry(path)
    expect(e3).toMatchObject({ event: 'auto-rollback', version: 'v2', canary: { passed: false } })
    expect(e3.canary!.steps).toHaveLength(1)
    expect(e3.canary!.steps[0].rules.find(r => r.id === 'errors')?.verdict).toBe('fail')
    expect(slotImages().some(i => i.endsWith(':errs'))).toBe(false)
    await sleep(500)
    for (let i = 0; i < 20; i++) expect(await served().catch(e => String(e))).toBe('v2')

    // a release that sleeps 300 ms: the p95 rule catches it at 5%
    const r4 = await deploy(options('slow', true))
    expect(r4.status).toBe('rolled-back')
    expect(r4.error).toMatch(/canary 5%: metrics gate failed: p95 (above )?0\.\d+.* > 0\.25/)
    expect(lastEntry(path).canary!.steps[0].rules.find(r => r.id === 'p95')?.verdict).toBe('fail')
    expect(slotImages().some(i => i.endsWith(':slow'))).toBe(false)

    // the next deploy works (the previous release is woken from its kept slot)
    const r5 = await deploy(options('v1', true))
    expect(r5.error).toBeUndefined()
    expect(await served()).toBe('v1')
    const res = await load.stop()
    expect(res.sent).toBeGreaterThan(RATE * 10)
    // the only 5xx the clients saw are the caught release's, at its 5% share
    expect(Object.keys(res.non2xx).filter(k => k !== '500')).toEqual([])
    expect(res.non2xx['500'] ?? 0).toBeLessThan(20)
    expect(ledgerEvents(path)).toEqual([
      'deploy v1',
      'deploy v2',
      'auto-rollback v2',
      'auto-rollback v2',
      'deploy v1'
    ])
    console.log(`canary behind ${name}: ${JSON.stringify({ ...res, bodies: undefined })}`)
  }, 400_000)

  it('the link lost during a canary step: the host sends all traffic back to the live slot by itself', async () => {
    const cut = await startTcpCut(sshd.port)
    let armed = true
    try {
      const r = await deploy({
        ...options('v2', true),
        version: 'v2-cut',
        connect: sshFleet(sshd, cut).connect,
        log: {
          info: (m: string) => {
            logs.push(m)
            if (armed && /canary: 5% of the traffic/.test(m)) {
              armed = false
              setTimeout(() => cut.cut(), 1000)
            }
          },
          warning: (m: string) => logs.push('WARN ' + m)
        }
      })
      expect(cut.cuts().length).toBe(1)
      // read back from the host's journal once its lock holder closed the transaction: v1 is back
      expect(r.status).toBe('rolled-back')
    } finally {
      await cut.stop()
    }
    // the lock holder's recovery ran: the proxy routes to the live slot alone, the new slot is gone
    expect(lastEntry(path)).toMatchObject({ event: 'recovered', version: 'v1' })
    for (let i = 0; i < 20; i++) expect(await served()).toBe('v1')
    expect(slotImages().some(i => i.endsWith(':v2'))).toBe(false)
    const next = await deploy(options('v2', false))
    expect(next.error).toBeUndefined()
    expect(await served()).toBe('v2')
  }, 240_000)
})

/**
 * The gate on real parts: small exporters served by node:http on loopback ports (the caller's tunnel is the
 * plain port here), whose counters and histogram move between the gate's two scrapes as real requests come
 * in. A good new slot passes; one answering 10% 5xx fails the error-ratio rule; one that sleeps fails p95.
 * The old slot (good) is scraped over the same window as the baseline. One exporter speaks OpenMetrics.
 * Last, a real Prometheus server scrapes an exporter and its PromQL (histogram_quantile over sum by le, a
 * ratio of sums) must give the gate's figures for a window that starts from nothing.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { evaluate, figure, gatePassed, type RuleResult } from '../../src/lib/gate/gate.js'
import { parseRules } from '../../src/lib/gate/rules.js'
import { parseScrape, scrape } from '../../src/lib/gate/scrape.js'
import { freePort, sleep, startProcess, type Proc } from '../../src/testkit/net.js'
import { send } from '../../src/lib/smoke/http.js'
import { ok, routes, serve, type Fixture } from '../../src/testkit/http-fixtures.js'
import { isUserError } from '../../src/lib/errors.js'

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

/** An app with Prometheus metrics: every `failEvery`th request answers 500, each sleeps `sleepMs`. */
function app(o: { failEvery?: number; sleepMs?: number; openMetrics?: boolean }) {
  const codes = new Map<string, number>()
  const buckets = BOUNDS.map(() => 0)
  let count = 0
  let sum = 0
  let n = 0
  const observe = (sec: number): void => {
    BOUNDS.forEach((b, i) => {
      if (sec <= b) buckets[i]++
    })
    count++
    sum += sec
  }
  const metrics = (): string => {
    const om = o.openMetrics === true
    const family = om ? 'http_requests' : 'http_requests_total'
    const lines = [
      `# TYPE ${family} counter`,
      ...[...codes].map(([c, v]) => `http_requests_total{code="${c}"} ${v}`),
      '# TYPE http_request_duration_seconds histogram',
      ...BOUNDS.map((b, i) => `http_request_duration_seconds_bucket{le="${b}"} ${buckets[i]}`),
      `http_request_duration_seconds_bucket{le="+Inf"} ${count}`,
      `http_request_duration_seconds_sum ${sum}`,
      `http_request_duration_seconds_count ${count}`
    ]
    return lines.join('\n') + (om ? '\n# EOF\n' : '\n')
  }
  return routes({
    '/work': (_req, res) => {
      const t0 = performance.now()
      const status = o.failEvery && ++n % o.failEvery === 0 ? 500 : 200
      const answer = (): void => {
        codes.set(String(status), (codes.get(String(status)) ?? 0) + 1)
        observe((performance.now() - t0) / 1000)
        res.writeHead(status, { 'content-type': 'text/plain' })
        res.end(status === 200 ? 'ok\n' : 'boom\n')
      }
      if (o.sleepMs) setTimeout(answer, o.sleepMs)
      else answer()
    },
    '/metrics': (_req, res) => {
      res.writeHead(200, {
        'content-type': o.openMetrics
          ? 'application/openmetrics-text; version=1.0.0; charset=utf-8'
          : 'text/plain; version=0.0.4; charset=utf-8'
      })
      res.end(metrics())
    }
  })
}

const fixtures: Fixture[] = []
afterAll(async () => {
  await Promise.all(fixtures.map(f => f.stop()))
})

const start = async (o: Parameters<typeof app>[0]): Promise<Fixture> => {
  const f = await serve(app(o))
  fixtures.push(f)
  return f
}

/** `total` requests, 10 at a time. */
async function traffic(url: string, total: number): Promise<void> {
  for (let i = 0; i < total; i += 10)
    await Promise.all(
      Array.from({ length: Math.min(10, total - i) }, () =>
        send({ url: `${url}/work`, method: 'GET', headers: {}, timeoutMs: 10_000 })
      )
    )
}

const RULES = parseRules(`
error-ratio: http_requests_total{code=~"5.."} / http_requests_total < 0.01
p95: http_request_duration_seconds < 300ms
`)

/** The gate's window on both slots: scrape, traffic to both, scrape again. */
async function step(next: Fixture, old: Fixture): Promise<RuleResult[]> {
  // the first scrape after some traffic: the window's deltas must not count it
  await Promise.all([traffic(next.url, 20), traffic(old.url, 20)])
  const [n1, o1] = await Promise.all([scrape(next.url), scrape(old.url)])
  await Promise.all([traffic(next.url, 50), traffic(old.url, 50)])
  const [n2, o2] = await Promise.all([scrape(next.url), scrape(old.url)])
  return evaluate(RULES, { before: n1, after: n2 }, { before: o1, after: o2 })
}

describe('metrics gate on real HTTP exporters', () => {
  it('a good new slot passes; the old slot is the baseline', async () => {
    const [next, old] = await Promise.all([start({}), start({})])
    const r = await step(next, old)
    expect(r.map(x => x.verdict)).toEqual(['pass', 'pass'])
    expect(r[0].reason).toBe('error-ratio 0 (0/50) < 0.01; old slot 0 (0/50)')
    expect(r[1].new.detail).toBe('50 observations')
    expect(gatePassed(r)).toBe(true)
  })

  it('a new slot answering 10% 5xx fails the error ratio (OpenMetrics exporter)', async () => {
    const [next, old] = await Promise.all([start({ failEvery: 10, openMetrics: true }), start({})])
    const r = await step(next, old)
    expect(r.map(x => x.verdict)).toEqual(['fail', 'pass'])
    // 20 before the window (2 errors), 50 in it: 5 errors
    expect(r[0].reason).toBe('error-ratio 0.1 (5/50) > 0.01 (wanted < 0.01); old slot 0 (0/50)')
    expect(gatePassed(r)).toBe(false)
  })

  it('a new slot that sleeps 350 ms fails p95 (a latency regression)', async () => {
    const [next, old] = await Promise.all([start({ sleepMs: 350 }), start({})])
    const r = await step(next, old)
    expect(r.map(x => x.verdict)).toEqual(['pass', 'fail'])
    // every observation is at least 0.35 s: above the 0.25 bucket
    expect(r[1].new.value).toBeGreaterThan(0.3)
    expect(r[1].reason).toMatch(
      /^p95 (above )?0\.\d+ \(50 observations\) > 0\.3 \(wanted < 0\.3\); old slot 0\.\d+/
    )
    expect(r[1].old!.value).toBeLessThan(0.3)
  })

  it('a slot without /metrics is a UserError naming the URL', async () => {
    const f = await serve(routes({}))
    fixtures.push(f)
    const err = await scrape(f.url).catch((e: unknown) => e)
    expect(isUserError(err)).toBe(true)
    expect((err as Error).message).toBe(
      `Scraping ${f.url}/metrics for 'canary-rules' answered 404 Not Found; make the service serve its metrics there with status 200.`
    )
  })
})

describe('the gate against a real Prometheus server', () => {
  const EXPOSITION = [
    '# TYPE lat histogram',
    ...['/a', '/b'].flatMap((path, k) =>
      [
        ['0.05', 40],
        ['0.1', 70],
        ['0.25', 88],
        ['0.5', 97],
        ['+Inf', 100]
      ].map(([le, n]) => `lat_bucket{path="${path}",le="${le}"} ${(n as number) * (k + 1)}`)
    ),
    'lat_sum{path="/a"} 9',
    'lat_count{path="/a"} 100',
    'lat_sum{path="/b"} 18',
    'lat_count{path="/b"} 200',
    '# TYPE req_total counter',
    'req_total{code="200"} 937',
    'req_total{code="503"} 63',
    ''
  ].join('\n')
  const RULES_PROM: [string, string][] = [
    ['p50: lat < 1', 'histogram_quantile(0.5, sum by (le) (lat_bucket))'],
    ['p95: lat < 1', 'histogram_quantile(0.95, sum by (le) (lat_bucket))'],
    ['p99: lat{path="/b"} < 1', 'histogram_quantile(0.99, sum by (le) (lat_bucket{path="/b"}))'],
    ['e: req_total{code=~"5.."} / req_total < 1', 'sum(req_total{code=~"5.."}) / sum(req_total)']
  ]
  let dir = ''
  let prom: Proc | undefined
  afterAll(async () => {
    await prom?.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('histogram_quantile and the ratio agree with the gate', async () => {
    const exporter = await serve(routes({ '/metrics': ok(EXPOSITION, 'text/plain; version=0.0.4') }))
    fixtures.push(exporter)
    dir = mkdtempSync(join(tmpdir(), 'shipline-gate-prom-'))
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: x\n    static_configs:\n      - targets: ['127.0.0.1:${exporter.port}']\n`
    )
    const port = await freePort()
    prom = startProcess('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`
    ])
    const query = async (q: string): Promise<number | undefined> => {
      try {
        const r = await send({
          url: `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`,
          method: 'GET',
          headers: {},
          timeoutMs: 5000
        })
        const body = JSON.parse(r.body.toString()) as { data?: { result?: { value: [number, string] }[] } }
        const v = body.data?.result?.[0]?.value[1]
        return v === undefined ? undefined : Number(v)
      } catch {
        return undefined // not up yet
      }
    }
    // bounded: the server scrapes every second once up
    const deadline = Date.now() + 60_000
    while ((await query(RULES_PROM[0][1])) === undefined) {
      if (Date.now() > deadline) throw new Error(`prometheus gave no result in 60 s:\n${prom.output()}`)
      await sleep(250)
    }
    const window = {
      before: parseScrape('', undefined, exporter.url, 0),
      after: parseScrape(EXPOSITION, 'text/plain; version=0.0.4', exporter.url, 1000)
    }
    for (const [line, promql] of RULES_PROM) {
      const [rule] = parseRules(line)
      const ours = figure(rule, window).value
      expect([line, await query(promql)]).toEqual([line, ours])
    }
  })
})

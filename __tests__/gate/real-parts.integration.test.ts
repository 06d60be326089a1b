/**
 * The gate on real parts: small exporters served by node:http on loopback ports (the caller's tunnel is the
 * plain port here), whose counters and histogram move between the gate's two scrapes as real requests come
 * in. A good new slot passes; one answering 10% 5xx fails the error-ratio rule; one that sleeps fails p95.
 * The old slot (good) is scraped over the same window as the baseline. One exporter speaks OpenMetrics.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { evaluate, gatePassed, type RuleResult } from '../../src/lib/gate/gate.js'
import { parseRules } from '../../src/lib/gate/rules.js'
import { scrape } from '../../src/lib/gate/scrape.js'
import { send } from '../../src/lib/smoke/http.js'
import { routes, serve, type Fixture } from '../../src/testkit/http-fixtures.js'
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

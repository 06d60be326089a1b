import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  evaluate,
  gatePassed,
  gateVerdict,
  histogramQuantile,
  type Bucket,
  type Window
} from '../../src/lib/gate/gate.js'
import { parseRules } from '../../src/lib/gate/rules.js'
import { parseScrape } from '../../src/lib/gate/scrape.js'

/** A window from two expositions (text format), `seconds` apart. */
const win = (before: string, after: string, seconds = 30): Window => ({
  before: parseScrape(before, undefined, 'http://slot/metrics', 0),
  after: parseScrape(after, undefined, 'http://slot/metrics', seconds * 1000)
})

const requests = (ok: number, err: number, extra = ''): string =>
  `# TYPE http_requests_total counter\nhttp_requests_total{code="200"} ${ok}\n` +
  (err >= 0 ? `http_requests_total{code="500"} ${err}\n` : '') +
  extra

/** histogram('0.1:900 +Inf:1000'): a histogram lat, le:count pairs */
const histogram = (spec: string): string => {
  const counts = spec.split(' ').map(p => p.split(':'))
  const buckets = counts.map(([le, n]) => `lat_bucket{le="${le}"} ${n}\n`).join('')
  return `# TYPE lat histogram\n${buckets}lat_count ${counts[counts.length - 1][1]}\nlat_sum 1\n`
}

const RULES = parseRules(`
error-ratio: http_requests_total{code=~"5.."} / http_requests_total < 0.01
p95: lat < 0.3
`)

describe('histogramQuantile: Prometheus histogram_quantile', () => {
  // hand-computed: rank = q·total, then start + (end - start)·(rank - below)/(in bucket)
  const B = (pairs: [number, number][]): Bucket[] => pairs.map(([le, count]) => ({ le, count }))
  const cases: [string, number, Bucket[], number][] = [
    [
      'inside the second bucket',
      0.5,
      B([
        [0.1, 3],
        [0.5, 10],
        [Infinity, 12]
      ]),
      0.1 + 0.4 * (3 / 7)
    ],
    [
      'the first bucket starts at 0',
      0.25,
      B([
        [1, 4],
        [2, 8],
        [Infinity, 8]
      ]),
      0.5
    ],
    [
      'in the +Inf bucket: the largest finite bound',
      0.95,
      B([
        [0.25, 10],
        [0.5, 18],
        [Infinity, 20]
      ]),
      0.5
    ],
    [
      'a first bound that is not positive is returned',
      0.1,
      B([
        [-1, 5],
        [0, 6],
        [Infinity, 10]
      ]),
      -1
    ],
    [
      'exact bucket boundary',
      0.5,
      B([
        [1, 5],
        [2, 10],
        [Infinity, 10]
      ]),
      1
    ],
    [
      'unsorted input is sorted',
      0.5,
      B([
        [Infinity, 12],
        [0.5, 10],
        [0.1, 3]
      ]),
      0.1 + 0.4 * (3 / 7)
    ],
    [
      'non-monotonic counts are evened out',
      0.5,
      B([
        [0.1, 6],
        [0.2, 5],
        [Infinity, 10]
      ]),
      0.1 * (5 / 6)
    ]
  ]
  it.each(cases)('%s', (_name, q, buckets, want) => {
    expect(histogramQuantile(q, buckets)).toBeCloseTo(want, 12)
  })
  it('NaN without observations, without a +Inf bucket, with one bucket', () => {
    expect(
      histogramQuantile(
        0.5,
        B([
          [1, 0],
          [Infinity, 0]
        ])
      )
    ).toBeNaN()
    expect(
      histogramQuantile(
        0.5,
        B([
          [1, 2],
          [2, 4]
        ])
      )
    ).toBeNaN()
    expect(histogramQuantile(0.5, B([[Infinity, 4]]))).toBeNaN()
    expect(
      histogramQuantile(
        -1,
        B([
          [1, 2],
          [Infinity, 4]
        ])
      )
    ).toBe(-Infinity)
    expect(
      histogramQuantile(
        2,
        B([
          [1, 2],
          [Infinity, 4]
        ])
      )
    ).toBe(Infinity)
  })

  it('agrees with the real promtool (promtool test rules evaluates histogram_quantile offline)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shipline-gate-'))
    try {
      const tests = cases.slice(0, 5).map(([, q, buckets], i) => {
        const series = buckets.map(b => ({
          series: `h${i}_bucket{le="${b.le === Infinity ? '+Inf' : b.le}"}`,
          values: String(b.count)
        }))
        const value = histogramQuantile(q, buckets)
        return { series, expr: `histogram_quantile(${q}, h${i}_bucket)`, value }
      })
      const yaml = [
        'rule_files: []',
        'evaluation_interval: 1m',
        'tests:',
        '  - interval: 1m',
        '    input_series:',
        ...tests.flatMap(t =>
          t.series.flatMap(s => [`      - series: '${s.series}'`, `        values: '${s.values}'`])
        ),
        '    promql_expr_test:',
        ...tests.flatMap(t => [
          `      - expr: '${t.expr}'`,
          '        eval_time: 0',
          '        exp_samples:',
          "          - labels: '{}'",
          `            value: ${t.value}`
        ])
      ].join('\n')
      writeFileSync(join(dir, 't.yml'), yaml + '\n')
      // exit 0 = every expression gave exactly our value (a mismatch prints exp/got and exits 1)
      const out = execFileSync('promtool', ['test', 'rules', join(dir, 't.yml')], { encoding: 'utf8' })
      expect(out).toMatch(/SUCCESS/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('evaluate', () => {
  it("the canary step's window: deltas, not totals; the old slot beside it", () => {
    const next = win(
      requests(1000, 0, histogram('0.1:900 0.5:1000 +Inf:1000')),
      requests(1458, 52, histogram('0.1:1300 0.5:1490 +Inf:1510'))
    )
    const old = win(requests(5000, 3), requests(5498, 3))
    const [ratio, p95] = evaluate(RULES, next, old)
    expect(ratio.new.value).toBeCloseTo(52 / 510, 12)
    expect(ratio.verdict).toBe('fail')
    expect(ratio.reason).toBe('error-ratio 0.102 (52/510) > 0.01 (wanted < 0.01); old slot 0 (0/498)')
    // p95 of the window: rank 484.5 of 510; 400 below 0.1, 90 in (0.1, 0.5]
    expect(p95.new.value).toBeCloseTo(0.1 + 0.4 * (84.5 / 90), 12)
    expect(p95.new.above).toBeUndefined()
    expect(p95.verdict).toBe('fail')
    expect(p95.old?.missing).toBe('no lat_bucket series match lat')
    expect(p95.reason).toBe(
      'p95 0.476 (510 observations) > 0.3 (wanted < 0.3); old slot n/a (no lat_bucket series match lat)'
    )
    expect(gatePassed([ratio, p95])).toBe(false)
    expect(gateVerdict([ratio, p95])).toMatch(/^metrics gate failed: error-ratio 0\.102/)
  })

  it('a healthy step passes', () => {
    const next = win(
      requests(100, 0, histogram('0.1:100 +Inf:100')),
      requests(600, 1, histogram('0.1:590 +Inf:601'))
    )
    const results = evaluate(RULES, next)
    expect(results.map(r => r.verdict)).toEqual(['pass', 'pass'])
    expect(results[0].reason).toBe('error-ratio 0.002 (1/501) < 0.01')
    expect(results[1].reason).toBe('p95 0.097 (501 observations) < 0.3') // 0.1 · 475.95/490
    expect(gateVerdict(results)).toBe('metrics gate passed (2 rules)')
  })

  it('counter resets: a series that went back counts from 0; a series born in the window counts whole', () => {
    // the new slot restarted inside the window: 200 → 40 requests, 10 → 2 errors
    const next = win(requests(190, 10), requests(38, 2))
    const [ratio] = evaluate(RULES, next)
    expect(ratio.new.value).toBeCloseTo(2 / 40, 12)
    expect(ratio.new.resets).toBe(2)
    expect(ratio.reason).toBe('error-ratio 0.05 (2/40, counter reset on 2 series) > 0.01 (wanted < 0.01)')
    // the first 5xx of the process: no code="500" series before
    const born = win(requests(100, -1), requests(150, 5))
    expect(evaluate(RULES, born)[0].reason).toBe('error-ratio 0.091 (5/55) > 0.01 (wanted < 0.01)')
  })

  it('histogram reset: the whole series restarts, its buckets stay cumulative', () => {
    const two = (a: number[], b: number[]): string =>
      '# TYPE lat histogram\n' +
      ['0.1', '0.5', '+Inf']
        .flatMap((le, i) => [
          `lat_bucket{path="/a",le="${le}"} ${a[i]}`,
          `lat_bucket{path="/b",le="${le}"} ${b[i]}`
        ])
        .join('\n') +
      `\nlat_count{path="/a"} ${a[2]}\nlat_count{path="/b"} ${b[2]}\n`
    const next = win(two([50, 100, 100], [10, 10, 10]), two([5, 20, 20], [30, 30, 30]))
    const [, p95] = evaluate(RULES, next)
    // /a restarted: 5, 20, 20; /b: 20, 20, 20 → 25, 40, 40; rank 38: (0.1, 0.5] holds 15, 13 of them below rank
    expect(p95.new.resets).toBe(1)
    expect(p95.new.value).toBeCloseTo(0.1 + 0.4 * (13 / 15), 12)
    expect(p95.reason).toBe('p95 0.447 (40 observations, counter reset on 1 series) > 0.3 (wanted < 0.3)')
  })

  it('the +Inf bucket: the quantile is above every finite bound, so above the threshold', () => {
    const next = win(histogram('0.25:0 +Inf:0'), histogram('0.25:1 +Inf:20'))
    const lenient = parseRules('p95: lat < 5')
    const [r] = evaluate(lenient, next)
    expect(r.new.value).toBe(0.25)
    expect(r.new.above).toBe(true)
    expect(r.verdict).toBe('fail')
    expect(r.reason).toBe('p95 above 0.25 (20 observations) > 5 (wanted < 5)')
  })

  it('no data: no requests or no observations in the window; passes unless noData is fail', () => {
    const same = requests(100, 2, histogram('0.1:3 +Inf:3'))
    const next = win(same, same)
    const results = evaluate(RULES, next)
    expect(results.map(r => [r.verdict, r.passed])).toEqual([
      ['no-data', true],
      ['no-data', true]
    ])
    expect(results[0].reason).toBe(
      'error-ratio: no data in the window (0/0), passes (nothing counted is no evidence of harm)'
    )
    expect(results[1].reason).toMatch(/^p95: no data in the window \(0 observations\)/)
    const strict = evaluate(RULES, next, undefined, { noData: 'fail' })
    expect(strict.map(r => r.passed)).toEqual([false, false])
    expect(strict[0].reason).toMatch(/fails \(no-data: fail\)$/)
  })

  it('a histogram without a +Inf bucket, or with nothing else, cannot give a quantile: it fails', () => {
    const noInf = (n: number): string => `lat_bucket{le="0.1"} ${n}\n`
    expect(evaluate(RULES, win(noInf(1), noInf(5)))[1].reason).toMatch(
      /^p95: lat has no le="\+Inf" bucket in the new slot's metrics/
    )
    const onlyInf = (n: number): string => `lat_bucket{le="+Inf"} ${n}\n`
    expect(evaluate(RULES, win(onlyInf(1), onlyInf(5)))[1].reason).toMatch(
      /^p95: lat has only the le="\+Inf" bucket/
    )
  })

  it('a selector that matches nothing fails: the metric is misnamed or not exported', () => {
    const next = win('up 1\n', 'up 1\n')
    const [ratio, p95] = evaluate(RULES, next)
    expect(ratio.verdict).toBe('fail')
    expect(ratio.reason).toBe(
      "error-ratio: no series match http_requests_total in the new slot's metrics; check the metric name and labels"
    )
    expect(p95.reason).toMatch(/^p95: no lat_bucket series match lat in the new slot's metrics/)
  })

  it('one metric: a gauge at the end, a counter by its increase; rate per second', () => {
    const rules = parseRules(
      'queue: queue_depth <= 10\nerrs: http_requests_total{code="500"} < 5\nrps: rate(http_requests_total) >= 10'
    )
    const next = win(
      requests(0, 0, '# TYPE queue_depth gauge\nqueue_depth{q="a"} 50\nqueue_depth{q="b"} 1\n'),
      requests(580, 20, '# TYPE queue_depth gauge\nqueue_depth{q="a"} 4\nqueue_depth{q="b"} 3\n'),
      60
    )
    const [queue, errs, rps] = evaluate(rules, next)
    expect([queue.new.value, queue.verdict]).toEqual([7, 'pass'])
    expect([errs.new.value, errs.verdict]).toEqual([20, 'fail'])
    expect([rps.new.value, rps.verdict]).toEqual([10, 'pass'])
    expect(rps.reason).toBe('rps 10 (600 in 60 s) = 10')
  })
})

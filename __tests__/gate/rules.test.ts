import { describe, expect, it } from '@jest/globals'
import { matches, parseRules, type Rule } from '../../src/lib/gate/rules.js'
import { isUserError } from '../../src/lib/errors.js'

const INPUT = `
# the canary's SLOs
error-ratio: http_requests_total{code=~"5.."} / http_requests_total < 0.01
p95: http_request_duration_seconds < 300ms
p99.9: http_request_duration_seconds{path!="/health", method!~"HEAD|OPTIONS"} <= 1
slow: quantile(0.5, rpc_seconds{service="api"}) < 0.1
queue: queue_depth <= 100
restarts: increase(process_restarts_total) < 1
rps: rate(http_requests_total) >= 1
errors-pct: errors_total/requests_total < 2%
`

describe('parseRules', () => {
  const rules = parseRules(INPUT)
  const by = (id: string): Rule => rules.find(r => r.id === id)!

  it('reads each form of the grammar', () => {
    expect(rules.map(r => [r.id, r.expr.kind, r.op, r.threshold])).toEqual([
      ['error-ratio', 'ratio', '<', 0.01],
      ['p95', 'quantile', '<', 0.3],
      ['p99.9', 'quantile', '<=', 1],
      ['slow', 'quantile', '<', 0.1],
      ['queue', 'value', '<=', 100],
      ['restarts', 'increase', '<', 1],
      ['rps', 'increase', '>=', 1],
      ['errors-pct', 'ratio', '<', 0.02]
    ])
    const p999 = by('p99.9').expr
    expect(p999.kind === 'quantile' && p999.q).toBeCloseTo(0.999, 12)
    const rps = by('rps').expr
    expect(rps.kind === 'increase' && rps.perSecond).toBe(true)
    const ratio = by('error-ratio').expr
    if (ratio.kind !== 'ratio') throw new Error('ratio expected')
    expect(ratio.num.metric).toBe('http_requests_total')
    expect(ratio.num.matchers.map(m => [m.label, m.op, m.value])).toEqual([['code', '=~', '5..']])
    expect(ratio.den.matchers).toEqual([])
  })

  it('matchers: = != =~ !~, regexes anchored, a missing label is the empty string', () => {
    const ratio = by('error-ratio').expr
    if (ratio.kind !== 'ratio') throw new Error('ratio expected')
    expect(matches(ratio.num, 'http_requests_total', { code: '503' })).toBe(true)
    expect(matches(ratio.num, 'http_requests_total', { code: '5030' })).toBe(false) // anchored
    expect(matches(ratio.num, 'http_requests_total', { code: '200' })).toBe(false)
    expect(matches(ratio.num, 'http_requests', { code: '500' })).toBe(false)
    const p = by('p99.9').expr
    if (p.kind !== 'quantile') throw new Error('quantile expected')
    const h = { ...p.histogram }
    expect(matches(h, h.metric, { path: '/a', method: 'GET' })).toBe(true)
    expect(matches(h, h.metric, { path: '/health', method: 'GET' })).toBe(false)
    expect(matches(h, h.metric, { path: '/a', method: 'HEAD' })).toBe(false)
    expect(matches(h, h.metric, {})).toBe(true) // path "" != "/health", method "" !~ HEAD|OPTIONS
    const [r] = parseRules('x: m{a="", b=~"x\\\\.y", c!=""} < 1')
    if (r.expr.kind !== 'value') throw new Error('value expected')
    expect(matches(r.expr.of, 'm', { b: 'x.y', c: 'z' })).toBe(true)
    expect(matches(r.expr.of, 'm', { b: 'xzy', c: 'z' })).toBe(false)
    expect(matches(r.expr.of, 'm', { a: 'q', b: 'x.y', c: 'z' })).toBe(false)
    expect(matches(r.expr.of, 'm', { b: 'x.y', constructor: '1' })).toBe(false) // c missing: ""
  })

  it('comparisons inside quoted label values are not the rule comparison', () => {
    const [r] = parseRules('odd: m{path="/a<b>c"} > 0.5')
    expect(r.op).toBe('>')
    expect(r.threshold).toBe(0.5)
  })

  const cases: [string, RegExp][] = [
    ['error-ratio http_requests_total < 1', /a rule is '<id>: <expr> <op> <threshold>'/],
    ['e: http_requests_total', /no comparison: end the rule with < <= > or >= and a threshold/],
    ['e: http_requests_total < lots', /threshold 'lots' is not a number; write e\.g\. 0\.01, 1%/],
    ['e: < 1', /nothing to compare before '<'/],
    ['e: 9lives < 1', /'9lives' is not a metric selector/],
    ['e: m{code=~"5(.."} < 1', /the regex "5\(\.\." of code is invalid .*fix it or use = \/ !=/],
    ['e: m{code=="5"} < 1', /the value of code in m\{\.\.\.\} must be in double quotes/],
    ['e: m{code~"5"} < 1', /expected = != =~ or !~ after the label code/],
    ['e: m{code="5} < 1', /no comparison|no closing quote/],
    ['e: m{code="5" x} < 1', /expected , or \} after the value of code/],
    ['e: m code < 1', /unexpected 'code' after the metric name m; labels go in/],
    ['p95: h_bucket < 1', /name the histogram without _bucket: 'h'/],
    ['p95: h{le="1"} < 1', /drop the le matcher/],
    ['q: quantile(1.5, h) < 1', /quantile '1\.5' must be between 0 and 1/],
    ['q: quantile(h) < 1', /quantile takes two arguments/],
    ['p0: h < 1', /'p0' is no quantile: use p1 to p99\.9/]
  ]
  it.each(cases)('%s → a UserError naming the input, the line and the fix', (line, message) => {
    let err: unknown
    try {
      parseRules(`# one\n${line}`, 'canary-rules')
    } catch (e) {
      err = e
    }
    expect(isUserError(err)).toBe(true)
    expect((err as Error).message).toMatch(/^Input 'canary-rules' line 2 \('/)
    expect((err as Error).message).toMatch(message)
  })

  it('an id used twice is an error', () => {
    expect(() => parseRules('a: m < 1\na: n < 2', 'rules')).toThrow(
      "Input 'rules' line 2 ('a: n < 2'): the id 'a' is used twice; give each rule its own id."
    )
  })

  it('empty input: no rules', () => {
    expect(parseRules('\n  # nothing\n')).toEqual([])
  })
})

import { describe, expect, it } from '@jest/globals'
import { parseScrape } from '../../src/lib/gate/scrape.js'
import { validateExposition, type ParsedSample } from '../../src/lib/prometheus/validate.js'
import { isUserError } from '../../src/lib/errors.js'

const TEXT = `# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a\\\\b \\"q\\"\\nx"} 510
http_requests_total{code="500",path="/"} 52 1700000000000
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 3
http_request_duration_seconds_bucket{le="+Inf"} 4
http_request_duration_seconds_sum 0.9
http_request_duration_seconds_count 4
queue_depth 7.5
`

describe('parseScrape', () => {
  it('reads the text format: names, unescaped labels, values, types', () => {
    const s = parseScrape(TEXT, 'text/plain; version=0.0.4', 'http://x/metrics', 1000)
    expect(s.format).toBe('text-0.0.4')
    expect(s.at).toBe(1000)
    expect(s.samples).toEqual([
      {
        name: 'http_requests_total',
        labels: { code: '200', path: '/a\\b "q"\nx' },
        value: 510,
        type: 'counter'
      },
      { name: 'http_requests_total', labels: { code: '500', path: '/' }, value: 52, type: 'counter' },
      { name: 'http_request_duration_seconds_bucket', labels: { le: '0.1' }, value: 3, type: 'histogram' },
      { name: 'http_request_duration_seconds_bucket', labels: { le: '+Inf' }, value: 4, type: 'histogram' },
      { name: 'http_request_duration_seconds_sum', labels: {}, value: 0.9, type: 'histogram' },
      { name: 'http_request_duration_seconds_count', labels: {}, value: 4, type: 'histogram' },
      { name: 'queue_depth', labels: {}, value: 7.5, type: '' }
    ])
  })

  it('reads OpenMetrics: counter _total samples belong to the family, exemplars and _created are harmless', () => {
    const om = [
      '# TYPE http_requests counter',
      'http_requests_total{code="200"} 10 # {trace_id="a"} 1',
      'http_requests_created{code="200"} 1700000000',
      '# TYPE lat histogram',
      'lat_bucket{le="0.5"} 1',
      'lat_bucket{le="+Inf"} 2',
      'lat_count 2',
      'lat_sum 1.5',
      '# EOF',
      ''
    ].join('\n')
    const s = parseScrape(om, 'application/openmetrics-text; version=1.0.0', 'u', 0)
    expect(s.format).toBe('openmetrics-1.0')
    expect(s.samples.map(x => [x.name, x.type, x.value])).toEqual([
      ['http_requests_total', 'counter', 10],
      ['http_requests_created', 'counter', 1700000000],
      ['lat_bucket', 'histogram', 1],
      ['lat_bucket', 'histogram', 2],
      ['lat_count', 'histogram', 2],
      ['lat_sum', 'histogram', 1.5]
    ])
  })

  it('refuses an invalid exposition with a UserError naming the URL, the line and the rule', () => {
    const bad = '# TYPE h histogram\nh_bucket{le="1"} 3\nh_count 3\n'
    let err: unknown
    try {
      parseScrape(bad, undefined, 'http://127.0.0.1:9/metrics', 0)
    } catch (e) {
      err = e
    }
    expect(isUserError(err)).toBe(true)
    expect((err as Error).message).toMatch(
      /^The metrics at http:\/\/127\.0\.0\.1:9\/metrics are not a valid text-0\.0\.4 exposition \(line 2, histogram-inf-bucket: .*fix the exporter/
    )
  })

  it('the onSample hook changes nothing in the validation result', () => {
    const seen: ParsedSample[] = []
    const a = validateExposition(TEXT)
    const b = validateExposition(TEXT, undefined, { onSample: s => seen.push(s) })
    expect(b).toEqual(a)
    expect(seen).toHaveLength(7)
    expect(seen[2].family).toBe('http_request_duration_seconds')
  })
})

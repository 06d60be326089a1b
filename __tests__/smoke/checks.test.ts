/** Parsing `checks` and `headers`, matching helpers, backoff, Retry-After, redaction. */
import { describe, expect, it } from '@jest/globals'
import { jsonContains, parseChecks, parseHeaderLines, statusAccepted } from '../../src/lib/smoke/checks.js'
import {
  backoffMs,
  checkUrl,
  isReadinessPath,
  parseBaseUrl,
  parseRetryAfter
} from '../../src/lib/smoke/run.js'
import { Redactor, displayUrl, redactUrlUserinfo } from '../../src/lib/redact.js'
import { resultsTable } from '../../src/lib/smoke/summary.js'
import { UserError } from '../../src/lib/errors.js'

const message = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(UserError)
    return (e as Error).message
  }
  throw new Error('expected a UserError')
}

describe('parseChecks', () => {
  it('defaults to /health, /readyz and /metrics with Prometheus validation', () => {
    for (const text of ['', '  \n', '[]']) {
      const c = parseChecks(text)
      expect(c.map(x => [x.path, x.method, x.status, x.format])).toEqual([
        ['/health', 'GET', [200], undefined],
        ['/readyz', 'GET', [200], undefined],
        ['/metrics', 'GET', [200], 'prometheus']
      ])
    }
  })

  it('reads every key', () => {
    const [a, b, c] = parseChecks(`
- path: /api/version
  method: get
  status: [200, "2xx", "304"]
  body: 'v\\d+'
  json: { ok: true }
  max-latency-ms: 250
  headers:
    X-Token: abc
- path: /metrics
  require-metrics: [http_requests_total, up]
- path: /hook
  data: { a: 1 }
`)
    expect(a).toMatchObject({
      path: '/api/version',
      method: 'GET',
      status: [200, '2xx', 304],
      json: { ok: true },
      maxLatencyMs: 250,
      line: 2
    })
    expect(a.body?.test('v12')).toBe(true)
    expect(a.headers).toEqual({ 'X-Token': 'abc' })
    expect(b).toMatchObject({ format: 'prometheus', requireMetrics: ['http_requests_total', 'up'], line: 10 })
    expect(c).toMatchObject({
      method: 'POST',
      data: '{"a":1}',
      headers: {},
      dataType: 'application/json'
    })
    expect(parseChecks('- health\n- /readyz?full=1').map(x => x.path)).toEqual(['/health', '/readyz?full=1'])
  })

  it('names the line and the key of an unknown key, with a suggestion', () => {
    const m = message(() => parseChecks('- path: /health\n- path: /metrics\n  require_metrics: [up]\n'))
    expect(m).toMatch(/line 3: unknown key 'require_metrics' in check 2; did you mean 'require-metrics'\?/)
    expect(message(() => parseChecks('- path: /x\n  timeout: 3'))).toMatch(/line 2: unknown key 'timeout'/)
  })

  it('names the line of malformed YAML', () => {
    expect(message(() => parseChecks('- path: /health\n- path: [unclosed\n'))).toMatch(
      /not valid YAML at line \d/
    )
    expect(message(() => parseChecks('- path: /a\n  path: /b'))).toMatch(/line 2/)
    expect(message(() => parseChecks('path: /health'))).toMatch(/must be a YAML list/)
  })

  it('rejects bad values with the line and the key', () => {
    expect(message(() => parseChecks('- path: /a\n  status: 999'))).toMatch(
      /line 2: 'status' of check 1 must be an HTTP status/
    )
    expect(message(() => parseChecks('- path: /a\n  body: "("'))).toMatch(
      /line 2: 'body' of check 1 is not a valid regular expression/
    )
    expect(message(() => parseChecks('- path: /a\n  format: json'))).toMatch(
      /'format' of check 1 must be 'prometheus'/
    )
    expect(message(() => parseChecks('- path: /a\n  method: FETCH'))).toMatch(/'method' of check 1/)
    expect(message(() => parseChecks('- path: /a\n  max-latency-ms: fast'))).toMatch(/'max-latency-ms'/)
    expect(message(() => parseChecks('- method: GET'))).toMatch(/line 1 \(check 1\): the check has no 'path'/)
    expect(message(() => parseChecks('- path: https://x.example/health'))).toMatch(/not a full URL/)
  })
})

describe('headers input', () => {
  it('parses Name: value lines and never echoes a bad line', () => {
    expect(parseHeaderLines('Authorization: Bearer a:b\n\n# c\nX-Key:  v ')).toEqual({
      Authorization: 'Bearer a:b',
      'X-Key': 'v'
    })
    const m = message(() => parseHeaderLines('X-Ok: 1\nsupersecretvalue'))
    expect(m).toMatch(/line 2 is not 'Name: value'/)
    expect(m).not.toContain('supersecretvalue')
  })
})

describe('matching helpers', () => {
  it('statusAccepted takes codes and classes', () => {
    expect(statusAccepted({ status: [200] }, 200)).toBe(true)
    expect(statusAccepted({ status: ['2xx'] }, 204)).toBe(true)
    expect(statusAccepted({ status: ['2xx', 404] }, 301)).toBe(false)
  })
  it('jsonContains is a subset match', () => {
    const doc = { a: 1, b: { c: [1, 2, { d: 'x', e: 1 }] }, n: null }
    expect(jsonContains(doc, { a: 1 })).toBe(true)
    expect(jsonContains(doc, { b: { c: [2, { d: 'x' }] } })).toBe(true)
    expect(jsonContains(doc, { n: null })).toBe(true)
    expect(jsonContains(doc, { b: { c: [3] } })).toBe(false)
    expect(jsonContains(doc, { a: '1' })).toBe(false)
    expect(jsonContains(doc, { z: undefined })).toBe(false)
  })
  it('readiness paths', () => {
    expect(['/readyz', '/-/ready', '/api/ready/', '/readyz?x=1'].every(isReadinessPath)).toBe(true)
    expect(isReadinessPath('/health')).toBe(false)
  })
  it('joins the base URL path and the check path', () => {
    expect(checkUrl(new URL('https://h.example/app/'), '/health?x=1').toString()).toBe(
      'https://h.example/app/health?x=1'
    )
    expect(checkUrl(new URL('http://h:8080'), '/metrics').toString()).toBe('http://h:8080/metrics')
    expect(() => parseBaseUrl('ftp://x')).toThrow(UserError)
    expect(() => parseBaseUrl('not a url')).toThrow(/must be an http/)
  })
})

describe('backoff and Retry-After', () => {
  it('grows exponentially, capped, with jitter between half and all', () => {
    const lo = { random: () => 0, baseMs: 100, capMs: 1000 }
    const hi = { random: () => 1, baseMs: 100, capMs: 1000 }
    expect([1, 2, 3, 4, 5, 6].map(n => backoffMs(n, hi))).toEqual([100, 200, 400, 800, 1000, 1000])
    expect([1, 2, 3, 4, 5, 6].map(n => backoffMs(n, lo))).toEqual([50, 100, 200, 400, 500, 500])
  })
  it('reads seconds and HTTP dates', () => {
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(parseRetryAfter('3', now)).toBe(3000)
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000)
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:05 GMT', now)).toBe(0)
    expect(parseRetryAfter('soon', now)).toBeUndefined()
    expect(parseRetryAfter(undefined, now)).toBeUndefined()
  })
})

describe('redaction', () => {
  it('removes URL userinfo, header values and their encoded forms', () => {
    const r = new Redactor()
    r.addUrl('https://deploy:s3cr3t-pw@h.example/')
    r.addHeaderValue(`Basic ${Buffer.from('bob:hunter22').toString('base64')}`)
    r.addHeaderValue('Bearer tok_abcdef')
    const text = [
      'https://deploy:s3cr3t-pw@h.example/x',
      'https://other:pw@elsewhere.example',
      Buffer.from('deploy:s3cr3t-pw').toString('base64'),
      'hunter22',
      'tok_abcdef',
      Buffer.from('tok_abcdef').toString('base64'),
      encodeURIComponent('s3cr3t-pw')
    ].join(' ')
    const out = r.redact(text)
    for (const s of [
      's3cr3t-pw',
      'hunter22',
      'tok_abcdef',
      'pw@',
      Buffer.from('tok_abcdef').toString('base64')
    ])
      expect(out).not.toContain(s)
    expect(redactUrlUserinfo('see http://a:b@h/ and https://h/')).toBe('see http://***@h/ and https://h/')
    expect(displayUrl('https://u:p@h.example/a')).toBe('https://h.example/a')
  })
  it('the summary table escapes pipes and newlines', () => {
    const t = resultsTable([
      { path: '/a', status: 500, 'latency-ms': 3, attempts: 2, ok: false, error: 'x | y\nz' }
    ])
    expect(t).toContain('| `/a` | ❌ fail | 500 | 3 ms | 2 | x \\| y z |')
  })
})

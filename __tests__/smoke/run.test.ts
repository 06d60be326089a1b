/** runSmoke against real local servers: retries, deadlines, address families, redirects, TLS, secrets. */
import { afterAll, describe, expect, it } from '@jest/globals'
import { parseChecks } from '../../src/lib/smoke/checks.js'
import { runSmoke, type SmokeOptions } from '../../src/lib/smoke/run.js'
import { Redactor } from '../../src/lib/redact.js'
import { validateExposition } from '../../src/lib/prometheus/validate.js'
import {
  bearer,
  canListen,
  flaky,
  hang,
  ok,
  readyz,
  redirect,
  routes,
  selfSignedCert,
  serve,
  type Fixture
} from '../../src/testkit/http-fixtures.js'

const IPV6 = await canListen('::1')
const fixtures: Fixture[] = []
afterAll(async () => {
  await Promise.all(fixtures.map(f => f.stop()))
})
async function start(...args: Parameters<typeof serve>): Promise<Fixture> {
  const f = await serve(...args)
  fixtures.push(f)
  return f
}

const METRICS = '# HELP up_total Things.\n# TYPE up_total counter\nup_total 1\n'
const healthy = routes({
  '/health': ok('ok\n'),
  '/readyz': ok('ok\n'),
  '/metrics': ok(METRICS, 'text/plain; version=0.0.4; charset=utf-8')
})
const fast = { baseMs: 20, capMs: 100 }
const run = (o: Partial<SmokeOptions> & Pick<SmokeOptions, 'url'>) =>
  runSmoke({
    checks: parseChecks(''),
    timeoutMs: 10_000,
    requestTimeoutMs: 2000,
    validate: validateExposition,
    backoff: fast,
    ...o
  })

describe('runSmoke', () => {
  it('passes the default checks against a healthy server, one attempt each', async () => {
    const s = await start(healthy)
    const r = await run({ url: s.url })
    expect(r.passed).toBe(true)
    expect(r.results.map(x => [x.path, x.status, x.attempts, x.ok, x.error])).toEqual([
      ['/health', 200, 1, true, null],
      ['/readyz', 200, 1, true, null],
      ['/metrics', 200, 1, true, null]
    ])
    expect(typeof r.results[0]['latency-ms']).toBe('number')
  })

  // (::1 is tested where the machine has IPv6 loopback; a container without it says so in the test name)
  it.each(IPV6 ? [['127.0.0.1'], ['::1']] : [['127.0.0.1'], ['127.0.0.1 (no ::1 on this machine)']])(
    'reaches localhost when the server listens only on %s',
    async label => {
      const host = label.split(' ')[0]
      const s = await start(healthy, { host })
      const r = await run({ url: `http://localhost:${s.port}` })
      expect(r.results.map(x => x.ok)).toEqual([true, true, true])
      expect(s.requests).toHaveLength(3)
    }
  )

  it('retries 503 until it turns 200 and counts attempts exactly', async () => {
    const h = flaky(2, 503)
    const s = await start(routes({ '/health': h }))
    const r = await run({ url: s.url, checks: parseChecks('- /health') })
    expect(r.results[0]).toMatchObject({ ok: true, status: 200, attempts: 3 })
    expect(h.count()).toBe(3)
  })

  it('honours Retry-After on 429 (seconds and HTTP date)', async () => {
    const s = await start(
      routes({ '/a': flaky(1, 429, '1'), '/b': flaky(1, 503, new Date(Date.now() + 1000).toUTCString()) })
    )
    const logs: string[] = []
    const r = await run({ url: s.url, checks: parseChecks('- /a\n- /b'), log: l => logs.push(l) })
    expect(r.results.map(x => [x.ok, x.attempts])).toEqual([
      [true, 2],
      [true, 2]
    ])
    expect(logs.join('\n')).toMatch(/\/a: attempt 1: status 429.*retrying in 1\.0s/)
  })

  it('gives up at once when Retry-After reaches past the deadline', async () => {
    const s = await start(routes({ '/health': flaky(5, 429, '3600') }))
    const r = await run({ url: s.url, checks: parseChecks('- /health'), timeoutMs: 5000 })
    expect(r.results[0]).toMatchObject({ ok: false, status: 429, attempts: 1 })
    expect(r.results[0].error).toMatch(/Retry-After 3600s is past the deadline/)
  })

  it('a hanging server: each request is cut at the deadline, the run ends with a timeout', async () => {
    const s = await start(routes({ '/health': hang() }))
    // request-timeout far beyond the deadline: the request must be clamped to the deadline
    const r = await run({
      url: s.url,
      checks: parseChecks('- /health'),
      timeoutMs: 1500,
      requestTimeoutMs: 60_000
    })
    expect(r.results[0]).toMatchObject({ ok: false, status: null, attempts: 1 })
    // the request's own limit was the time left before the deadline, not request-timeout
    const limit = Number(/no complete answer within (\d+) ms/.exec(r.results[0].error ?? '')?.[1])
    expect(limit).toBeLessThanOrEqual(1500)
  })

  it('connection refused is retried until the deadline and reported', async () => {
    const s = await start(healthy)
    await s.stop()
    const r = await run({ url: s.url, checks: parseChecks('- /health'), timeoutMs: 800 })
    expect(r.results[0].ok).toBe(false)
    expect(r.results[0].attempts).toBeGreaterThan(1)
    expect(r.results[0].error).toMatch(/connection refused/)
  })

  it('a DNS failure is retried until the deadline and reported', async () => {
    const r = await run({
      url: 'http://shipline-nowhere.invalid',
      checks: parseChecks('- /health'),
      timeoutMs: 500
    })
    expect(r.results[0]).toMatchObject({ ok: false, status: null })
    expect(r.results[0].error).toMatch(/DNS lookup failed|no complete answer/)
  })

  it('retries a mismatch (404 behind a proxy during a rollout) and reports the reason', async () => {
    const h = flaky(1, 404)
    const page = '<html>\n<head><title>502 Bad\n Gateway</title></head>\n<body>nginx</body></html>'
    const s = await start(
      routes({ '/health': h, '/gone': ok('nope', 'text/plain', 404), '/proxy': ok(page, 'text/html', 502) })
    )
    const r = await run({ url: s.url, checks: parseChecks('- /health\n- /gone\n- /proxy'), timeoutMs: 600 })
    expect(r.results[0]).toMatchObject({ ok: true, attempts: 2 })
    expect(r.results[1]).toMatchObject({ ok: false, status: 404 })
    expect(r.results[1].error).toMatch(/^status 404 Not Found, expected 200: nope/)
    expect(r.results[2].error).toMatch(/^status 502 Bad Gateway, expected 200: 502 Bad Gateway$/)
  })

  it('checks body regex, JSON subset, status lists, methods and data', async () => {
    const s = await start(
      routes({
        '/version': ok('{"version":"1.2.3","git":{"sha":"abc"},"tags":["a","b"]}', 'application/json'),
        '/created': (_req, res, body) => {
          res.writeHead(body === '{"x":1}' ? 201 : 400)
          res.end(body)
        }
      })
    )
    const checks = parseChecks(`
- path: /version
  body: '"version":\\s*"1\\.'
  json: { git: { sha: abc }, tags: [b] }
- path: /created
  data: { x: 1 }
  status: [200, 201]
- path: /version
  json: { version: "2.0.0" }
`)
    const r = await run({ url: s.url, checks, timeoutMs: 500 })
    expect(r.results.map(x => x.ok)).toEqual([true, true, false])
    expect(r.results[2].error).toMatch(/JSON body does not contain/)
    expect(s.requests.find(q => q.path === '/created')).toMatchObject({
      method: 'POST',
      headers: { 'content-type': 'application/json' }
    })
  })

  it('fails an invalid exposition with the validator rule, and missing require-metrics', async () => {
    const s = await start(
      routes({
        '/bad': ok('# TYPE x counter\nx{a="1"} 1\nx{a="1"} 2\n', 'text/plain; version=0.0.4'),
        '/good': ok(METRICS, 'text/plain; version=0.0.4')
      })
    )
    const checks = parseChecks(
      '- { path: /bad, format: prometheus }\n- { path: /good, require-metrics: [up_total, missing_total] }'
    )
    const r = await run({ url: s.url, checks, timeoutMs: 300 })
    expect(r.results[0].ok).toBe(false)
    expect(r.results[0].error).toMatch(/invalid Prometheus exposition .*line 3/)
    expect(r.results[1].error).toBe('missing metrics: missing_total')
  })

  it('serves one broken exposition per rule: each check fails naming its line and rule', async () => {
    const T = 'text/plain; version=0.0.4'
    const OM = 'application/openmetrics-text; version=1.0.0; charset=utf-8'
    const H = '# TYPE h histogram\n'
    const cases: [rule: string, type: string, body: string][] = [
      ['final-newline', T, '# TYPE a counter\na 1'],
      ['metric-name', T, '1abc 1\n'],
      ['label-name', T, 'a{1x="v"} 1\n'],
      ['label-value-escape', T, 'a{x="\\q"} 1\n'],
      ['help-duplicate', T, '# HELP a x\n# HELP a y\na 1\n'],
      ['type-duplicate', T, '# TYPE a counter\n# TYPE a counter\na 1\n'],
      ['type-after-samples', T, 'a 1\n# TYPE a counter\n'],
      ['type-lowercase', T, '# TYPE a Counter\na 1\n'],
      ['family-not-contiguous', T, 'a 1\nb 1\na{x="1"} 2\n'],
      ['series-duplicate', T, 'a{x="1"} 1\na{x="1"} 2\n'],
      ['value-float', T, 'a one\n'],
      ['timestamp-integer', T, 'a 1 1.5\n'],
      ['om-eof-missing', OM, '# TYPE a gauge\na 1\n'],
      ['histogram-inf-bucket', T, `${H}h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n`],
      ['histogram-count-mismatch', T, `${H}h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n`],
      [
        'histogram-bucket-decreasing',
        T,
        `${H}h_bucket{le="1"} 5\nh_bucket{le="2"} 3\nh_bucket{le="+Inf"} 5\nh_sum 1\nh_count 5\n`
      ],
      [
        'histogram-le-order',
        T,
        `${H}h_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n`
      ],
      ['summary-quantile-range', T, '# TYPE s summary\ns{quantile="1.5"} 1\ns_sum 1\ns_count 1\n']
    ]
    const s = await start(
      routes(Object.fromEntries(cases.map(([rule, type, body]) => [`/${rule}`, ok(body, type)])))
    )
    const checks = parseChecks(cases.map(([rule]) => `- { path: /${rule}, format: prometheus }`).join('\n'))
    const r = await run({ url: s.url, checks, timeoutMs: 300 })
    for (const [i, [rule, type]] of cases.entries()) {
      const format = type === OM ? 'openmetrics-1.0' : 'text-0.0.4'
      expect(r.results[i]).toMatchObject({ ok: false, status: 200 })
      expect(r.results[i].error).toMatch(
        new RegExp(`^invalid Prometheus exposition \\(${format}\\): line \\d+: ${rule}: `)
      )
    }
  })

  it('readyz failure: fetches ?verbose once and shows the failing lines', async () => {
    const s = await start(routes({ '/readyz': readyz(['ping', 'db', 'cache'], ['db']) }))
    const logs: string[] = []
    const r = await run({
      url: s.url,
      checks: parseChecks('- /readyz'),
      timeoutMs: 300,
      log: l => logs.push(l)
    })
    expect(r.results[0].ok).toBe(false)
    expect(r.results[0].error).toMatch(/\?verbose: \[-\]db failed: reason withheld \| readyz check failed/)
    expect(logs.join('\n')).toContain('[-]db failed')
    expect(s.requests.filter(q => q.path === '/readyz?verbose')).toHaveLength(1)
  })

  it('bearer token from headers: sent, redacted everywhere, never forwarded to another origin', async () => {
    const token = 'tok-3f9c2a7e51'
    const custom = 'custom-secret-99'
    const other = await start(routes({ '/elsewhere': ok('ok\n') }))
    const same = await start(
      routes({
        '/health': bearer(token, ok('ok\n')),
        '/hop': redirect('/health'),
        '/away': bearer(token, redirect(`${other.url}/elsewhere`))
      })
    )
    const redactor = new Redactor()
    const logs: string[] = []
    const r = await run({
      url: same.url,
      checks: parseChecks('- /health\n- /hop\n- path: /away\n  headers: { X-Api-Secret: ' + custom + ' }'),
      headers: { Authorization: `Bearer ${token}` },
      redactor,
      log: l => logs.push(l)
    })
    expect(r.results.map(x => x.ok)).toEqual([true, true, true])
    // same origin: the redirect kept the token (the /health behind /hop answered 200)
    expect(
      same.requests
        .filter(q => q.path === '/health')
        .every(q => q.headers.authorization === `Bearer ${token}`)
    ).toBe(true)
    // other origin: neither the Authorization header nor the check's own secret header arrived
    expect(other.requests).toHaveLength(1)
    expect(JSON.stringify(other.requests[0].headers)).not.toContain(token)
    expect(JSON.stringify(other.requests[0].headers)).not.toContain(custom)
    expect(redactor.redact(`Bearer ${token} and ${custom}`)).toBe('*** and ***')
    expect(JSON.stringify([r, logs])).not.toMatch(new RegExp(`${token}|${custom}`))
  })

  it('without the token the bearer server answers 401 and the reason says so', async () => {
    const s = await start(routes({ '/health': bearer('x-secret', ok()) }))
    const r = await run({ url: s.url, checks: parseChecks('- /health'), timeoutMs: 300 })
    expect(r.results[0]).toMatchObject({ ok: false, status: 401 })
  })

  it('userinfo in the url becomes Basic auth and never shows', async () => {
    const s = await start(routes({ '/health': ok() }))
    const u = new URL(s.url)
    u.username = 'deploy'
    u.password = 'pa55-w0rd-x'
    const r = await run({ url: u.toString(), checks: parseChecks('- /health') })
    expect(r.results[0].ok).toBe(true)
    expect(s.requests[0].headers.authorization).toBe(
      `Basic ${Buffer.from('deploy:pa55-w0rd-x').toString('base64')}`
    )
  })

  it('self-signed TLS fails fast without insecure-tls and passes with it', async () => {
    const s = await start(routes({ '/health': ok() }), { tls: selfSignedCert() })
    const strict = await run({ url: s.url, checks: parseChecks('- /health'), timeoutMs: 5000 })
    expect(strict.results[0]).toMatchObject({ ok: false, attempts: 1 })
    expect(strict.results[0].error).toMatch(/TLS: .*insecure-tls: true/)
    const loose = await run({
      url: `https://localhost:${s.port}`,
      checks: parseChecks('- /health'),
      insecureTls: true
    })
    expect(loose.results[0]).toMatchObject({ ok: true, status: 200 })
  })

  it('max-latency-ms fails a slow answer', async () => {
    const s = await start(
      routes({
        '/slow': (_req, res) => {
          setTimeout(() => res.end('ok'), 400)
        }
      })
    )
    const r = await run({
      url: s.url,
      checks: parseChecks('- { path: /slow, max-latency-ms: 50 }'),
      timeoutMs: 1000
    })
    expect(r.results[0].ok).toBe(false)
    expect(r.results[0].error).toMatch(/over max-latency-ms 50/)
  })
})

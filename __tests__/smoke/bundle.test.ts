/**
 * The built bundle dist/smoke-test/index.js, run the way the Actions runner runs it (Node 24, INPUT_*,
 * GITHUB_OUTPUT, GITHUB_STEP_SUMMARY), reporting to the local GitHub REST stand-in. Run `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { runActionBundle, type RunResult } from '../../src/testkit/runner.js'
import { start as startGitHub, type GitHubApi } from '../../src/testkit/github-api.js'
import {
  bearer,
  canListen,
  flaky,
  ok,
  readyz,
  routes,
  selfSignedCert,
  serve,
  type Fixture
} from '../../src/testkit/http-fixtures.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const TOKEN = 'ghs_bundle_rw_0123456789abcdef'
const RO_TOKEN = 'ghs_bundle_ro_0123456789abcdef'
const BEARER = 'sk-live-8d1f6a2c4e'
const CHECK_SECRET = 'chk-hdr-5b7e9d3a'
const PASSWORD = 'url-pw-77c1e0'
const HEAD_SHA = 'c'.repeat(40)
const METRICS =
  '# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{code="200"} 7\n'

let gh: GitHubApi
let app: Fixture
let app6: Fixture // listens on ::1 only; reached as localhost
const readyzFlaky = flaky(1, 503)

beforeAll(async () => {
  gh = await startGitHub({ token: TOKEN, readOnlyTokens: [RO_TOKEN] })
  app = await serve(
    bearer(
      BEARER,
      routes({
        '/health': ok('{"status":"up"}', 'application/json'),
        '/readyz': readyzFlaky,
        '/metrics': ok(METRICS, 'text/plain; version=0.0.4; charset=utf-8'),
        '/admin': (req, res) => {
          res.writeHead(req.headers['x-admin-key'] === CHECK_SECRET ? 200 : 403)
          res.end()
        },
        '/broken-readyz': readyz(['db', 'queue'], ['queue'])
      })
    )
  )
  const ipv6 = await canListen('::1')
  app6 = await serve(bearer(BEARER, routes({ '/health': ok() })), { host: ipv6 ? '::1' : '127.0.0.1' })
})
afterAll(async () => {
  await Promise.all([gh.stop(), app.stop(), app6.stop()])
})

const withPassword = (): string => {
  const u = new URL(app.url)
  u.username = 'deploy'
  u.password = PASSWORD
  return u.toString()
}

/** Every secret, in every form a leak could take, is absent from the text. */
function expectNoSecrets(text: string): void {
  for (const s of [
    BEARER,
    CHECK_SECRET,
    PASSWORD,
    TOKEN,
    Buffer.from(`deploy:${PASSWORD}`).toString('base64')
  ]) {
    expect(text).not.toContain(s)
  }
}
function expectNoSecretsOutsideMasks(r: RunResult): void {
  const lines = r.stdout.split('\n').filter(l => !l.startsWith('::add-mask::'))
  expectNoSecrets(lines.join('\n'))
  expectNoSecrets(r.stderr)
  expectNoSecrets(r.summary)
  expectNoSecrets(JSON.stringify(r.outputs))
}

describe('dist/smoke-test bundle', () => {
  it('passes with credentials from headers, url userinfo and a per-check header; reports a commit status', async () => {
    const r = await runActionBundle({
      action: 'smoke-test',
      inputs: {
        url: withPassword(),
        headers: `Authorization: Bearer ${BEARER}`,
        checks: [
          '- path: /health',
          '  json: { status: up }',
          '- /readyz',
          '- path: /metrics',
          '  require-metrics: [app_requests_total]',
          '- path: /admin',
          `  headers: { X-Admin-Key: ${CHECK_SECRET} }`
        ].join('\n'),
        timeout: '30',
        report: 'status',
        'status-context': 'smoke / stage'
      },
      github: { token: TOKEN, apiUrl: gh.url, repository: 'acme/shop', sha: 'd'.repeat(40) }
    })
    expect(r.stderr).toBe('')
    expect(r.exitCode).toBe(0)
    expect(r.outputs.passed).toBe('true')
    const results = JSON.parse(r.outputs.results) as Record<string, unknown>[]
    expect(results.map(x => Object.keys(x))).toEqual(
      Array(4).fill(['path', 'status', 'latency-ms', 'attempts', 'ok', 'error'])
    )
    expect(results.map(x => [x.path, x.status, x.attempts, x.ok, x.error])).toEqual([
      ['/health', 200, 1, true, null],
      ['/readyz', 200, 2, true, null],
      ['/metrics', 200, 1, true, null],
      ['/admin', 200, 1, true, null]
    ])
    expect(r.summary).toContain('| check | result | status | latency | attempts | reason |')
    expect(r.summary).toMatch(/\| `\/readyz` \| ✅ pass \| 200 \| \d+ ms \| 2 \| {2}\|/)
    // every secret and its Basic form were masked before anything else was printed
    expect(r.masks).toEqual(expect.arrayContaining([BEARER, CHECK_SECRET, PASSWORD, TOKEN]))
    const firstMask = r.stdout.indexOf('::add-mask::')
    expect(r.stdout.slice(0, firstMask).trim()).toBe('')
    expectNoSecretsOutsideMasks(r)
    // pending while the checks ran, then the verdict, on the same context
    expect(gh.statuses.filter(x => x.context === 'smoke / stage').map(x => x.state)).toEqual([
      'pending',
      'success'
    ])
    const status = gh.statuses.at(-1)!
    expect(status).toMatchObject({
      repo: 'acme/shop',
      sha: 'd'.repeat(40),
      state: 'success',
      context: 'smoke / stage'
    })
    expect(String(status.description)).toMatch(/^all 4 checks passed/)
    expect(gh.requests.at(-1)?.headers.authorization).toBe(`token ${TOKEN}`)
  })

  it('fails on a pull request, shows the readyz ?verbose lines, and creates a failed check run on the PR head', async () => {
    const before = gh.checkRuns.length
    const r = await runActionBundle({
      action: 'smoke-test',
      inputs: {
        url: app.url,
        headers: `Authorization: Bearer ${BEARER}`,
        checks: '- /health\n- /broken-readyz\n',
        timeout: '2',
        'request-timeout': '1',
        report: 'check'
      },
      github: {
        token: TOKEN,
        apiUrl: gh.url,
        repository: 'acme/shop',
        eventName: 'pull_request',
        event: { pull_request: { number: 7, head: { sha: HEAD_SHA } } }
      }
    })
    expect(r.exitCode).toBe(1)
    expect(r.outputs.passed).toBe('false')
    const results = JSON.parse(r.outputs.results) as {
      path: string
      ok: boolean
      error: string
      status: number
    }[]
    expect(results[1]).toMatchObject({ path: '/broken-readyz', ok: false, status: 503 })
    expect(results[1].error).toContain('[-]queue failed')
    expect(r.stdout).toContain('[-]queue failed: reason withheld')
    const error = r.annotations.find(a => a.level === 'error')
    expect(error?.message).toMatch(
      /^Smoke test failed: 1 of 2 checks failed; first: \/broken-readyz: status 503/
    )
    // one check run: created in progress at the start, completed by a PATCH at the end
    expect(gh.checkRuns).toHaveLength(before + 1)
    const runCalls = gh.requests.filter(q => q.path.includes('/check-runs')).slice(-2)
    expect(runCalls.map(q => [q.method, (q.body as { status?: string }).status, q.status])).toEqual([
      ['POST', 'in_progress', 201],
      ['PATCH', 'completed', 200]
    ])
    expect(gh.checkRuns.at(-1)).toMatchObject({
      head_sha: HEAD_SHA,
      name: 'smoke-test',
      status: 'completed',
      conclusion: 'failure',
      output: { title: 'Smoke test failed' }
    })
    expect(String((gh.checkRuns.at(-1)!.output as { text: string }).text)).toContain(
      '| `/broken-readyz` | ❌ fail | 503 |'
    )
    expectNoSecretsOutsideMasks(r)
  })

  it('with a read-only token (fork PR) it warns and the step still passes (localhost served on ::1 only)', async () => {
    const r = await runActionBundle({
      action: 'smoke-test',
      inputs: {
        url: `http://localhost:${app6.port}`,
        headers: `Authorization: Bearer ${BEARER}`,
        checks: '- /health',
        report: 'status'
      },
      github: { token: RO_TOKEN, apiUrl: gh.url, repository: 'acme/shop' }
    })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.passed).toBe('true')
    const warning = r.annotations.find(a => a.level === 'warning')
    expect(warning?.message).toMatch(
      /report: status skipped: .*Resource not accessible by integration.*statuses: write/
    )
    expect(gh.requests.at(-1)).toMatchObject({ status: 403, body: { state: 'pending' } })
    // one warning, and no second call after the first was refused
    expect(r.annotations.filter(a => a.level === 'warning')).toHaveLength(1)
  })

  it('a failing GitHub API is a warning, not a failed smoke test', async () => {
    gh.failNext(502, { message: 'Server Error' })
    const r = await runActionBundle({
      action: 'smoke-test',
      inputs: {
        url: app.url,
        headers: `Authorization: Bearer ${BEARER}`,
        checks: '- /health',
        report: 'check'
      },
      github: { token: TOKEN, apiUrl: gh.url, repository: 'acme/shop' }
    })
    expect(r.exitCode).toBe(0)
    expect(r.annotations.find(a => a.level === 'warning')?.message).toMatch(
      /^report: check failed \(HTTP 502\): Server Error/
    )
    expect(gh.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: '/repos/acme/shop/check-runs',
      status: 502
    })
  })

  it('TLS with a private CA: NODE_EXTRA_CA_CERTS verifies it, insecure-tls is not needed', async () => {
    const pem = selfSignedCert()
    const tls = await serve(routes({ '/health': ok() }), { tls: pem })
    const dir = mkdtempSync(join(tmpdir(), 'shipline-ca-'))
    try {
      writeFileSync(join(dir, 'ca.pem'), pem.cert)
      const inputs = { url: `https://localhost:${tls.port}`, checks: '- /health', timeout: '5' }
      const trusted = await runActionBundle({
        action: 'smoke-test',
        inputs,
        env: { NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') }
      })
      expect(trusted.exitCode).toBe(0)
      const untrusted = await runActionBundle({ action: 'smoke-test', inputs })
      expect(untrusted.exitCode).toBe(1)
      expect(JSON.parse(untrusted.outputs.results)[0]).toMatchObject({ ok: false, attempts: 1 })
    } finally {
      await tls.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a malformed checks input fails with the line and the key', async () => {
    const r = await runActionBundle({
      action: 'smoke-test',
      inputs: { url: app.url, checks: '- path: /health\n  stauts: 200\n' }
    })
    expect(r.exitCode).toBe(1)
    expect(r.annotations.find(a => a.level === 'error')?.message).toBe(
      "Input 'checks' line 2: unknown key 'stauts' in check 1; did you mean 'status'? Known keys: path, method, status, body, json, format, require-metrics, max-latency-ms, headers, data."
    )
    expect(r.outputs).toEqual({})
  })
})

/**
 * Runs smoke checks concurrently inside one deadline. Each check is tried until it passes or the deadline
 * comes: connection failures, timeouts, 5xx and 429 are the classic transient ones, but a deployment that
 * is still starting may also answer 404 or a half-ready body for a moment behind a proxy, so every failure
 * is retried except TLS verification errors (waiting does not fix a certificate). Waits between attempts
 * are capped exponential backoff with jitter, or the server's Retry-After; each request and each wait is
 * clamped to what is left of the deadline, so the run ends at most a moment after it.
 */
import { statusAccepted, jsonContains, type Check } from './checks.js'
import { send, splitUserinfo, RequestError, type HttpResponse } from './http.js'
import { Redactor, displayUrl } from '../redact.js'
import { UserError } from '../errors.js'
import { toLogger, type Logger, type LogLine } from '../log.js'
import { validateExposition } from '../prometheus/validate.js'

/** The part of the Prometheus validator's result a smoke check reads (src/lib/prometheus/validate.ts). */
export interface ExpositionReport {
  format: string
  errors: { line: number; rule: string; message: string }[]
  metricNames: Set<string>
}
export type Validator = (text: string, contentType?: string) => ExpositionReport

/** One entry of the `results` output (keys as the contract names them). */
export interface CheckResult {
  path: string
  status: number | null
  'latency-ms': number | null
  attempts: number
  ok: boolean
  error: string | null
}

export interface SmokeOptions {
  /** the base URL: text (parsed and checked here, errors name input 'url') or already parsed by parseBaseUrl() */
  url: string | URL
  checks: Check[]
  timeoutMs: number
  requestTimeoutMs: number
  /** sent with every request (per-check headers win) */
  headers?: Record<string, string>
  insecureTls?: boolean
  /** the exposition validator (default: src/lib/prometheus/validate.ts) */
  validate?: Validator
  /** receives redacted log lines (a Logger's info, or a bare line callback) */
  log?: Logger | LogLine
  redactor?: Redactor
  /**
   * the redactor already holds the URL's userinfo and every header's value (smokeSecrets() filled it, so
   * the caller could mask them before logging): runSmoke does not add them again
   */
  secretsKnown?: boolean
  backoff?: Partial<BackoffOptions>
  /** performance.now() value the deadline counts from (default: when runSmoke is called) */
  startedAt?: number
}

export interface SmokeReport {
  passed: boolean
  results: CheckResult[]
  durationMs: number
}

export interface BackoffOptions {
  baseMs: number
  capMs: number
  random: () => number
}

/** Capped exponential backoff with "equal jitter": between half and all of min(cap, base·2^(n-1)). */
export function backoffMs(
  attempt: number,
  { baseMs = 250, capMs = 5000, random = Math.random }: Partial<BackoffOptions> = {}
): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(exp / 2 + random() * (exp / 2))
}

/** Retry-After as milliseconds from now: delay-seconds or an HTTP date; undefined when absent or invalid. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs = Date.now()
): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim()
  if (!v) return undefined
  if (/^\d+$/.test(v)) return Number(v) * 1000
  const t = Date.parse(v)
  if (Number.isNaN(t)) return undefined
  return Math.max(0, t - nowMs)
}

/** Base URL + check path (keeping the base's own path prefix). */
export function checkUrl(base: URL, path: string): URL {
  const u = new URL(base)
  const q = path.indexOf('?')
  const p = q >= 0 ? path.slice(0, q) : path
  u.pathname = base.pathname.replace(/\/+$/, '') + (p.startsWith('/') ? p : `/${p}`)
  u.search = q >= 0 ? path.slice(q) : ''
  u.hash = ''
  return u
}

/** The base URL of a smoke test, checked; errors name `input` (smoke-test's 'url', ship's 'smoke-url'). */
export function parseBaseUrl(raw: string, input = 'url'): URL {
  let u: URL
  try {
    u = new URL(raw.trim())
  } catch {
    throw new UserError(
      `Input '${input}' must be an http:// or https:// URL like 'https://stage.example.com', got '${displayUrl(raw.trim())}'.`
    )
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new UserError(`Input '${input}' must start with http:// or https://, got '${u.protocol}'.`)
  }
  return u
}

/**
 * Fills `redactor` with every secret a smoke run carries: the URL's userinfo, the global headers' values and
 * each check's own header values (the values and their encoded forms; see Redactor).
 */
export function smokeSecrets(
  redactor: Redactor,
  s: { url: string | URL; headers?: Record<string, string>; checks: Check[] }
): Redactor {
  redactor.addUrl(String(s.url))
  // the Authorization header made from the URL's userinfo (all its forms: Basic value, base64, user:password)
  try {
    const { authorization } = splitUserinfo(typeof s.url === 'string' ? new URL(s.url.trim()) : s.url)
    if (authorization) redactor.addHeaderValue(authorization)
  } catch {
    /* not a URL: parseBaseUrl() reports it */
  }
  for (const v of Object.values(s.headers ?? {})) redactor.addHeaderValue(v)
  for (const c of s.checks) for (const v of Object.values(c.headers)) redactor.addHeaderValue(v)
  return redactor
}

const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, Math.max(0, ms)))
const clip = (s: string, n = 160): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s)

interface Attempt {
  ok: boolean
  status: number | null
  latencyMs: number | null
  error?: string
  retryable: boolean
  retryAfterMs?: number
  timedOut?: boolean
}

export async function runSmoke(opts: SmokeOptions): Promise<SmokeReport> {
  const started = performance.now()
  // the deadline counts from `startedAt` when given (the entrypoint passes its process start)
  const deadline = (opts.startedAt ?? started) + opts.timeoutMs
  const redactor = opts.redactor ?? new Redactor()
  const logger = toLogger(opts.log)
  const log = (line: string): void => logger.info(redactor.redact(line))
  const parsed = typeof opts.url === 'string' ? parseBaseUrl(opts.url) : opts.url
  const { url: base, authorization } = splitUserinfo(parsed)
  if (!opts.secretsKnown) smokeSecrets(redactor, { url: parsed, headers: opts.headers, checks: opts.checks })
  const globalHeaders: Record<string, string> = {
    ...(authorization ? { Authorization: authorization } : {}),
    ...opts.headers
  }

  const results = await Promise.all(
    opts.checks.map(async check => {
      const headers = mergeHeaders(globalHeaders, check.headers)
      // every header the user gave is a potential credential: none of them crosses to another origin
      const secretHeaders = Object.keys(headers).map(h => h.toLowerCase())
      const has = (name: string): boolean => Object.keys(headers).some(h => h.toLowerCase() === name)
      if (check.dataType && !has('content-type')) headers['Content-Type'] = check.dataType
      if (check.format === 'prometheus' && !has('accept')) {
        headers.Accept = PROMETHEUS_ACCEPT // what Prometheus itself sends when it scrapes
      }
      const target = checkUrl(base, check.path)
      const follow = !check.status.some(s => (typeof s === 'number' ? s >= 300 && s < 400 : s === '3xx'))
      const tryOnce = async (timeoutMs: number): Promise<Attempt> => {
        try {
          const res = await send({
            url: target.toString(),
            method: check.method,
            headers,
            body: check.data,
            timeoutMs,
            insecureTls: opts.insecureTls,
            followRedirects: follow,
            secretHeaders
          })
          return evaluate(check, res, opts.validate ?? validateExposition)
        } catch (e) {
          const err = e instanceof RequestError ? e : new RequestError('other', String(e))
          const hint =
            err.kind === 'tls'
              ? "; if the certificate is self-signed on purpose, set 'insecure-tls: true'"
              : ''
          return {
            ok: false,
            status: null,
            latencyMs: null,
            error: `${err.message}${hint}`,
            retryable: err.kind !== 'tls',
            timedOut: err.kind === 'timeout'
          }
        }
      }

      let attempts = 0
      let last: Attempt = {
        ok: false,
        status: null,
        latencyMs: null,
        error: 'not tried: the deadline had passed',
        retryable: false
      }
      for (;;) {
        const remaining = deadline - performance.now()
        if (remaining <= 0) break
        attempts++
        const clamped = remaining < opts.requestTimeoutMs
        const attempt = await tryOnce(Math.min(opts.requestTimeoutMs, remaining))
        if (clamped && attempt.timedOut && last.status !== null) {
          // the deadline, not the server, cut this attempt short: the previous answer says more
          last = { ...last, error: `${last.error} (attempt ${attempts} was cut short by the deadline)` }
          break
        }
        last = attempt
        if (last.ok || !last.retryable) break
        const left = deadline - performance.now()
        let wait = last.retryAfterMs ?? backoffMs(attempts, opts.backoff)
        if (last.retryAfterMs !== undefined && last.retryAfterMs >= left) {
          log(
            `${check.path}: attempt ${attempts}: ${last.error}; Retry-After ${Math.ceil(last.retryAfterMs / 1000)}s reaches past the deadline, giving up`
          )
          last.error += ` (Retry-After ${Math.ceil(last.retryAfterMs / 1000)}s is past the deadline)`
          break
        }
        // keep a slot for one last attempt before the deadline rather than sleeping past it
        // (a Retry-After that ends before the deadline is honoured as given)
        const reserve = Math.min(opts.requestTimeoutMs, 500)
        if (last.retryAfterMs === undefined) {
          if (left <= reserve) {
            log(`${check.path}: attempt ${attempts}: ${last.error}; no time left for another attempt`)
            break
          }
          wait = Math.min(wait, left - reserve)
        }
        log(`${check.path}: attempt ${attempts}: ${last.error}; retrying in ${(wait / 1000).toFixed(1)}s`)
        await sleep(wait)
      }
      if (last.ok)
        log(
          `${check.path}: ok (${last.status}, ${last.latencyMs} ms, ${attempts} attempt${attempts === 1 ? '' : 's'})`
        )
      else {
        log(`${check.path}: FAILED after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${last.error}`)
        if (isReadinessPath(check.path) && last.status !== null) {
          // one more look with ?verbose: Kubernetes-style readiness endpoints list their failing parts there
          const verbose = checkUrl(base, withVerbose(check.path))
          const budget = Math.min(opts.requestTimeoutMs, Math.max(0, deadline - performance.now()) + 500)
          try {
            const res = await send({
              url: verbose.toString(),
              method: 'GET',
              headers,
              timeoutMs: budget,
              insecureTls: opts.insecureTls,
              secretHeaders
            })
            const failing = res.body
              .toString('utf8')
              .split('\n')
              .map(l => l.trim())
              .filter(l => /\[-\]|failed/i.test(l))
            if (failing.length) {
              log(`${check.path}?verbose says:\n  ${failing.join('\n  ')}`)
              last.error += `; ?verbose: ${clip(failing.join(' | '), 300)}`
            }
          } catch (e) {
            log(`${check.path}?verbose could not be fetched: ${(e as Error).message}`)
          }
        }
      }
      const result: CheckResult = {
        path: redactor.redact(check.path),
        status: last.status,
        'latency-ms': last.latencyMs,
        attempts,
        ok: last.ok,
        error: last.ok ? null : redactor.redact(last.error ?? 'failed')
      }
      return result
    })
  )
  return { passed: results.every(r => r.ok), results, durationMs: Math.round(performance.now() - started) }
}

function mergeHeaders(global: Record<string, string>, own: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(global))
    if (!Object.keys(own).some(o => o.toLowerCase() === k.toLowerCase())) out[k] = v
  return { ...out, ...own }
}

export function isReadinessPath(path: string): boolean {
  const p = path.split('?')[0].replace(/\/+$/, '').toLowerCase()
  return p.endsWith('readyz') || p.endsWith('ready')
}

function withVerbose(path: string): string {
  return path.includes('?') ? `${path}&verbose` : `${path}?verbose`
}

/** Judges one answer against the check. Every failure is retryable (see the module comment). */
export function evaluate(check: Check, res: HttpResponse, validate: Validator): Attempt {
  const base = { status: res.status, latencyMs: res.latencyMs, retryable: true }
  const fail = (error: string, extra: Partial<Attempt> = {}): Attempt => ({
    ...base,
    ok: false,
    error,
    ...extra
  })
  if (!statusAccepted(check, res.status)) {
    const text = firstWords(res)
    const retryAfterMs =
      res.status === 429 || res.status === 503 ? parseRetryAfter(res.headers['retry-after']) : undefined
    return fail(
      `status ${res.status}${res.statusText ? ` ${res.statusText}` : ''}, expected ${check.status.join(' or ')}${text ? `: ${clip(text, 120)}` : ''}`,
      {
        retryAfterMs
      }
    )
  }
  if (check.maxLatencyMs !== undefined && res.latencyMs > check.maxLatencyMs) {
    return fail(`latency ${res.latencyMs} ms is over max-latency-ms ${check.maxLatencyMs}`)
  }
  const text = res.body.toString('utf8')
  if (check.body && !check.body.test(text))
    return fail(`body does not match /${check.body.source}/: ${clip(text.trim().split('\n')[0] ?? '', 80)}`)
  if (check.json !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return fail(`body is not JSON: ${clip(text.trim(), 80)}`)
    }
    if (!jsonContains(parsed, check.json))
      return fail(`JSON body does not contain ${clip(JSON.stringify(check.json), 120)}`)
  }
  if (check.format === 'prometheus') {
    const ct = res.headers['content-type']
    const report = validate(text, Array.isArray(ct) ? ct[0] : ct)
    if (report.errors.length > 0) {
      const first = report.errors
        .slice(0, 3)
        .map(e => `line ${e.line}: ${e.rule}: ${e.message}`)
        .join('; ')
      const more = report.errors.length > 3 ? ` (and ${report.errors.length - 3} more)` : ''
      return fail(`invalid Prometheus exposition (${report.format}): ${first}${more}`)
    }
    const missing = check.requireMetrics.filter(m => !report.metricNames.has(m))
    if (missing.length) return fail(`missing metrics: ${missing.join(', ')}`)
  }
  return { ...base, ok: true }
}

/** What an error page says, in a few words: its HTML <title>, else its first line. */
function firstWords(res: HttpResponse): string {
  const text = res.body.toString('utf8', 0, Math.min(res.body.length, 64 * 1024))
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1]?.trim()
  if (title) return title.replace(/\s+/g, ' ')
  return (text.trim().split('\n')[0] ?? '').trim()
}

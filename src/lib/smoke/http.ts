/**
 * One HTTP exchange for a smoke check, on node:http/https (no global fetch: we need the lookup, the TLS
 * switch and manual redirects in our hands):
 * - `localhost` (and `*.localhost`) tries 127.0.0.1 and ::1, whichever listens (RFC 6761: both are
 *   loopback; /etc/hosts often lists one only), other names use every address DNS gives (happy eyeballs);
 * - one deadline covers connect, redirects and the body; a request never outlives it;
 * - redirects are followed by hand: same origin keeps every header, another origin gets none of the
 *   credential headers (Authorization, Cookie, and every header the user configured);
 * - errors are classified (refused, reset, dns, timeout, tls…) so the caller can decide to retry.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { SECRET_HEADERS } from '../redact.js'

export type FailureKind = 'refused' | 'reset' | 'dns' | 'timeout' | 'tls' | 'redirect' | 'too-large' | 'other'

export class RequestError extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string
  ) {
    super(message)
    this.name = 'RequestError'
  }
}

export interface HttpRequest {
  url: string
  method: string
  headers: Record<string, string>
  body?: string
  timeoutMs: number
  insecureTls?: boolean
  /** follow 3xx answers (default true) */
  followRedirects?: boolean
  maxRedirects?: number
  /** lowercase names of headers never sent to another origin (added to the well-known credential headers) */
  secretHeaders?: Iterable<string>
  maxBodyBytes?: number
}

export interface HttpResponse {
  status: number
  statusText: string
  headers: IncomingHttpHeaders
  body: Buffer
  /** the URL that answered (after redirects) */
  url: string
  redirects: string[]
  latencyMs: number
}

const LOOPBACK = [
  { address: '127.0.0.1', family: 4 },
  { address: '::1', family: 6 }
]

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number
) => void

/** dns.lookup, except that localhost names give both loopback addresses. */
function smokeLookup(
  hostname: string,
  options: { family?: number | string; all?: boolean },
  callback: LookupCallback
): void {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost')) {
    const fam = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : Number(options.family ?? 0)
    const list = LOOPBACK.filter(a => !fam || a.family === fam)
    if (options.all) callback(null, list)
    else callback(null, list[0].address, list[0].family)
    return
  }
  dnsLookup(
    hostname,
    { ...options, family: Number(options.family ?? 0) || 0, all: true } as { all: true },
    (err, addrs) => {
      if (err) return callback(err, [])
      if (options.all) callback(null, addrs)
      else callback(null, addrs[0].address, addrs[0].family)
    }
  )
}

const TLS_CODES = /CERT|SSL|TLS|UNABLE_TO_VERIFY|SELF_SIGNED|ERR_TLS/

function classify(e: unknown): RequestError {
  if (e instanceof RequestError) return e
  const err = e as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] }
  const inner = err.errors?.length ? err.errors : [err]
  const codes = inner.map(x => x.code ?? '').filter(Boolean)
  const code = codes.find(c => c !== 'ECONNREFUSED') ?? codes[0] ?? err.code ?? ''
  const msg = inner.map(x => x.message).join('; ') || err.message
  if (codes.length && codes.every(c => c === 'ECONNREFUSED'))
    return new RequestError('refused', `connection refused (${msg})`)
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME')
    return new RequestError('dns', `DNS lookup failed (${msg})`)
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT')
    return new RequestError('timeout', `connect timed out (${msg})`)
  if (TLS_CODES.test(code)) return new RequestError('tls', `TLS: ${msg} (${code})`)
  if (
    [
      'ECONNRESET',
      'EPIPE',
      'ECONNABORTED',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'EADDRNOTAVAIL',
      'UND_ERR_SOCKET'
    ].includes(code)
  ) {
    return new RequestError('reset', `connection ${code === 'ECONNRESET' ? 'reset' : 'failed'} (${msg})`)
  }
  if (/socket hang up/i.test(msg)) return new RequestError('reset', `connection reset (${msg})`)
  return new RequestError('other', msg || String(e))
}

/** The Authorization header for userinfo in a URL, and the URL without it. */
export function splitUserinfo(url: URL): { url: URL; authorization?: string } {
  if (!url.username && !url.password) return { url }
  const user = decodeURIComponent(url.username)
  const pass = decodeURIComponent(url.password)
  const clean = new URL(url)
  clean.username = ''
  clean.password = ''
  return { url: clean, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` }
}

/** Performs the request (following redirects unless told not to) within `timeoutMs`. */
export async function send(req: HttpRequest): Promise<HttpResponse> {
  const started = performance.now()
  const deadline = started + req.timeoutMs
  const secret = new Set([...SECRET_HEADERS, ...[...(req.secretHeaders ?? [])].map(h => h.toLowerCase())])
  let url = new URL(req.url)
  let method = req.method
  let body = req.body
  let headers = { ...req.headers }
  const redirects: string[] = []
  const max = req.maxRedirects ?? 5
  for (;;) {
    const remaining = deadline - performance.now()
    if (remaining <= 0) throw new RequestError('timeout', `no answer within ${req.timeoutMs} ms`)
    const res = await exchange(url, method, headers, body, remaining, req)
    const location = res.headers.location
    if (
      req.followRedirects === false ||
      res.status < 300 ||
      res.status > 399 ||
      res.status === 304 ||
      !location
    ) {
      return { ...res, url: url.toString(), redirects, latencyMs: Math.round(performance.now() - started) }
    }
    if (redirects.length >= max)
      throw new RequestError('redirect', `more than ${max} redirects (last to ${location})`)
    let next: URL
    try {
      next = new URL(location, url)
    } catch {
      throw new RequestError('redirect', `redirect to an invalid location '${location}'`)
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new RequestError('redirect', `redirect to unsupported ${next.protocol} URL`)
    if (next.origin !== url.origin) {
      // another origin: credentials stay behind (and userinfo in the Location does not become a header either)
      headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !secret.has(k.toLowerCase())))
      next.username = ''
      next.password = ''
    }
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = method === 'HEAD' ? 'HEAD' : 'GET'
      body = undefined
      headers = Object.fromEntries(
        Object.entries(headers).filter(([k]) => !/^content-(type|length)$/i.test(k))
      )
    }
    redirects.push(next.toString())
    url = next
  }
}

function exchange(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
  req: HttpRequest
): Promise<Omit<HttpResponse, 'url' | 'redirects' | 'latencyMs'>> {
  const limit = req.maxBodyBytes ?? 64 * 1024 * 1024
  return new Promise((resolve, reject) => {
    const https = url.protocol === 'https:'
    const options: RequestOptions & { autoSelectFamily: boolean; rejectUnauthorized?: boolean } = {
      method,
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (https ? 443 : 80),
      path: `${url.pathname}${url.search}`,
      headers: {
        'User-Agent': 'shipline-smoke-test',
        ...headers,
        ...(body !== undefined ? { 'Content-Length': String(Buffer.byteLength(body)) } : {})
      },
      agent: false,
      lookup: smokeLookup as unknown as RequestOptions['lookup'],
      autoSelectFamily: true
    }
    if (https) {
      options.rejectUnauthorized = !req.insecureTls
      ;(options as { servername?: string }).servername = /^[\d.]+$|:/.test(options.host as string)
        ? undefined
        : (options.host as string)
    }
    let settled = false
    const done = (f: () => void): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      f()
    }
    const r = (https ? httpsRequest : httpRequest)(options, res => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > limit) {
          r.destroy()
          done(() => reject(new RequestError('too-large', `body larger than ${limit} bytes`)))
          return
        }
        chunks.push(c)
      })
      res.on('end', () =>
        done(() =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? '',
            headers: res.headers,
            body: Buffer.concat(chunks)
          })
        )
      )
      res.on('error', e => done(() => reject(classify(e))))
      res.on('close', () => {
        if (!res.complete)
          done(() => reject(new RequestError('reset', 'connection closed before the body ended')))
      })
    })
    const timer = setTimeout(
      () => {
        done(() =>
          reject(new RequestError('timeout', `no complete answer within ${Math.round(timeoutMs)} ms`))
        )
        r.destroy()
      },
      Math.max(1, timeoutMs)
    )
    r.on('error', e => done(() => reject(classify(e))))
    if (body !== undefined) r.write(body)
    r.end()
  })
}

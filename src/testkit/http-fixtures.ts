/**
 * Small real HTTP(S) servers for smoke tests, each on a free port of one address (127.0.0.1 or ::1),
 * recording every request it gets (method, path, headers):
 *
 *   const s = await serve(routes({ '/health': ok('up'), '/readyz': flaky(2, 503) }), { host: '::1' })
 *   s.url, s.requests, await s.stop()
 *
 * Handlers: ok(body, type?), flaky(failures, status, retryAfter?), hang() (never answers), redirect(to),
 * bearer(token, inner), readyz(failing[]) (Kubernetes-style, with ?verbose listing `[-]x failed`).
 * selfSignedCert() makes a key and certificate for 127.0.0.1/localhost with openssl, in a temp folder
 * that is removed at once (the PEM text stays in memory).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttp, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import { createServer as createHttps } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

export interface Seen {
  method: string
  path: string
  headers: IncomingMessage['headers']
  body: string
}

export interface Fixture {
  url: string
  port: number
  requests: Seen[]
  stop(): Promise<void>
}

export async function serve(
  handler: Handler,
  opts: { host?: string; port?: number; tls?: { key: string; cert: string } } = {}
): Promise<Fixture> {
  const host = opts.host ?? '127.0.0.1'
  const requests: Seen[] = []
  const sockets = new Set<Socket>()
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = []
    req.on('data', c => chunks.push(c as Buffer))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body })
      handler(req, res, body)
    })
  }
  const server: Server = opts.tls
    ? createHttps({ key: opts.tls.key, cert: opts.tls.cert }, onRequest)
    : createHttp(onRequest)
  server.on('connection', (s: Socket) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const h = host.includes(':') ? `[${host}]` : host
  return {
    url: `${opts.tls ? 'https' : 'http'}://${h}:${port}`,
    port,
    requests,
    stop: () =>
      new Promise<void>(resolve => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
  }
}

/** Dispatch on the path (query ignored); unknown paths answer 404. */
export function routes(table: Record<string, Handler>): Handler {
  return (req, res, body) => {
    const path = (req.url ?? '/').split('?')[0]
    const h = table[path]
    if (h) h(req, res, body)
    else {
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('404 page not found\n')
    }
  }
}

export const ok =
  (body = 'ok\n', type = 'text/plain; charset=utf-8', status = 200): Handler =>
  (_req, res) => {
    res.writeHead(status, { 'content-type': type })
    res.end(body)
  }

/** `failures` answers of `status` (with Retry-After when given), then the inner handler (default 200 ok). */
export function flaky(
  failures: number,
  status = 503,
  retryAfter?: string,
  then: Handler = ok()
): Handler & { count: () => number } {
  let n = 0
  const h = ((req, res, body) => {
    n++
    if (n <= failures) {
      res.writeHead(status, {
        'content-type': 'text/plain',
        ...(retryAfter !== undefined ? { 'retry-after': retryAfter } : {})
      })
      res.end(`try again (${n})\n`)
      return
    }
    then(req, res, body)
  }) as Handler & { count: () => number }
  h.count = () => n
  return h
}

/** Accepts the request and never answers (the socket is destroyed when the fixture stops). */
export const hang = (): Handler => () => undefined

export const redirect =
  (to: string, status = 302): Handler =>
  (_req, res) => {
    res.writeHead(status, { location: to })
    res.end()
  }

export const bearer =
  (token: string, inner: Handler): Handler =>
  (req, res, body) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' })
      res.end('unauthorized\n')
      return
    }
    inner(req, res, body)
  }

/** A Kubernetes-style readiness endpoint: 503 listing `[-]<name> failed` under ?verbose while `failing` is not empty. */
export const readyz =
  (checks: string[], failing: string[]): Handler =>
  (req, res) => {
    const verbose = /[?&]verbose/.test(req.url ?? '')
    const bad = failing.length > 0
    const lines = checks.map(c => (failing.includes(c) ? `[-]${c} failed: reason withheld` : `[+]${c} ok`))
    res.writeHead(bad ? 503 : 200, { 'content-type': 'text/plain' })
    res.end(
      verbose
        ? `${lines.join('\n')}\nreadyz check ${bad ? 'failed' : 'passed'}\n`
        : bad
          ? 'readyz check failed\n'
          : 'ok\n'
    )
  }

/** A self-signed certificate for localhost / 127.0.0.1 / ::1, made with openssl. */
export function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-cert-'))
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem')
      ],
      { stdio: 'pipe' }
    )
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8')
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** True when this machine can listen on the address (::1 is missing where IPv6 is disabled). */
export async function canListen(host: string): Promise<boolean> {
  return new Promise(resolve => {
    const srv = createNetServer()
    srv.once('error', () => resolve(false))
    srv.listen(0, host, () => srv.close(() => resolve(true)))
  })
}

/**
 * A small HTTP server in front of a real registry (or standing in for one) that lets a test play a hostile
 * or broken registry on chosen requests: answer them itself (a drip-fed body, an oversized manifest, an
 * index with a bad child digest), forward them with a rewritten path, or forward them and change the
 * headers of the answer (a `Location` or `Link` pointing at another origin, a bad `Docker-Content-Digest`).
 * Everything else is passed through unchanged (the Host header too, so the registry's Location headers
 * point back at the front). Every request is recorded with the Authorization header it carried.
 *
 *   const front = await startRegistryFront(reg.url, [
 *     { method: 'GET', path: /\/blobs\//, respond: drip() },
 *     { method: 'GET', path: /\/tags\/list/, headers: h => ({ ...h, link: `<${other}/x>; rel="next"` }) }
 *   ])
 *   front.host, front.url, front.requests, front.setRules([...]), await front.stop()
 *
 * Without a target (`startRegistryFront(undefined, rules)`) requests no rule answers get a 404.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse
} from 'node:http'
import type { Socket } from 'node:net'
import { freePort } from './net.js'

export type FrontHandler = (req: IncomingMessage, res: ServerResponse) => void

export interface FrontRule {
  /** HTTP method to match (default any) */
  method?: string
  /** matched against the request path with query (default any) */
  path?: RegExp
  /** how many matching requests the rule applies to (default Infinity) */
  times?: number
  /** answer here; the upstream never sees the request (its body is read and dropped first) */
  respond?: FrontHandler
  /** forward with this path+query instead */
  rewrite?: (path: string) => string
  /** forward, then change the headers of the upstream's answer (its status and body are kept) */
  headers?: (headers: IncomingHttpHeaders, req: IncomingMessage) => IncomingHttpHeaders
}

export interface FrontRequest {
  method: string
  path: string
  authorization?: string
  /** 'front' when a rule answered it, 'upstream' when it was forwarded */
  answeredBy: 'front' | 'upstream'
}

export interface RegistryFront {
  /** `127.0.0.1:<port>` */
  host: string
  url: string
  requests: FrontRequest[]
  /** replace the rules (counters restart) */
  setRules(rules: FrontRule[]): void
  stop(): Promise<void>
}

export async function startRegistryFront(
  target: string | undefined,
  rules: FrontRule[] = []
): Promise<RegistryFront> {
  const upstream = target ? new URL(target) : undefined
  let active = rules.map(rule => ({ rule, fired: 0 }))
  const requests: FrontRequest[] = []
  const sockets = new Set<Socket>()

  const pick = (req: IncomingMessage): FrontRule | undefined => {
    for (const a of active) {
      if (a.rule.method && a.rule.method !== req.method) continue
      if (a.rule.path && !a.rule.path.test(req.url ?? '')) continue
      if (a.fired >= (a.rule.times ?? Infinity)) continue
      a.fired++
      return a.rule
    }
    return undefined
  }

  const server = createServer((req, res) => {
    const rule = pick(req)
    const entry: FrontRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      answeredBy: rule?.respond || !upstream ? 'front' : 'upstream'
    }
    requests.push(entry)
    if (rule?.respond || !upstream) {
      const handler: FrontHandler =
        rule?.respond ??
        ((_q, r) => {
          r.writeHead(404, { 'content-type': 'application/json' })
          r.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'no upstream' }] }))
        })
      req.resume()
      handler(req, res)
      return
    }
    const path = rule?.rewrite ? rule.rewrite(req.url ?? '/') : req.url
    const up = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers: req.headers },
      upRes => {
        const headers = rule?.headers ? rule.headers({ ...upRes.headers }, req) : upRes.headers
        res.writeHead(upRes.statusCode ?? 502, headers)
        upRes.pipe(res)
      }
    )
    up.on('error', () => res.socket?.destroy())
    res.on('close', () => up.destroy())
    req.pipe(up)
  })
  server.on('connection', s => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const port = await freePort()
  await new Promise<void>(resolve => server.listen(port, '127.0.0.1', resolve))
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    setRules: r => {
      active = r.map(rule => ({ rule, fired: 0 }))
    },
    stop: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** Answers 200 with a large Content-Length and then sends one byte every `intervalMs`, forever. */
export function drip(
  intervalMs = 100,
  headers: Record<string, string> = { 'content-type': 'application/octet-stream' }
): FrontHandler {
  return (_req, res) => {
    res.writeHead(200, { 'content-length': String(1 << 30), ...headers })
    const t = setInterval(() => res.write(Buffer.from('x')), intervalMs)
    res.on('error', () => clearInterval(t))
    res.on('close', () => clearInterval(t))
  }
}

/** Accepts the request (reading its body) and never answers. */
export const silent = (): FrontHandler => () => undefined

/** Answers `status` with a body (a string, bytes or JSON) and headers; `chunked` leaves Content-Length out. */
export function answer(
  status: number,
  body: string | Buffer | object = '',
  headers: Record<string, string> = {},
  { chunked = false }: { chunked?: boolean } = {}
): FrontHandler {
  const bytes = Buffer.isBuffer(body)
    ? body
    : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  return (req, res) => {
    res.writeHead(status, {
      ...(typeof body === 'object' && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}),
      ...headers,
      ...(chunked ? {} : { 'content-length': String(bytes.length) })
    })
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    // in pieces, so a chunked answer is really chunked
    for (let i = 0; i < bytes.length; i += 64 * 1024) res.write(bytes.subarray(i, i + 64 * 1024))
    res.end()
  }
}

/**
 * A small HTTP reverse proxy for tests that puts faults in front of a real server (a registry): answers
 * 429 with Retry-After, 5xx, or drops the connection (before a response, or halfway through the body), on
 * the requests a rule matches, a given number of times. Everything else is passed through unchanged (the
 * Host header too, so the registry's Location headers point back at the proxy).
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { freePort } from './net.js'

export type Fault =
  | { status: number; retryAfter?: number | string; body?: string }
  /** destroy the client's connection without answering */
  | { drop: 'before-response' }
  /** forward, send the status and half of the body, then destroy the connection */
  | { drop: 'mid-body' }
  /** forward with a rewritten path+query (e.g. strip `mount=` so the registry opens a plain upload) */
  | { rewrite: (path: string) => string }

export interface FaultRule {
  /** HTTP method to match (default any) */
  method?: string
  /** matched against the request path with query (default any) */
  path?: RegExp
  /** how many matching requests get the fault (default 1; Infinity: all) */
  times?: number
  /** skip this many matching requests before faulting (default 0) */
  after?: number
  fault: Fault
}

export interface ProxiedRequest {
  method: string
  path: string
  /** status sent to the client, or 'dropped' */
  outcome: number | 'dropped'
  faulted: boolean
  /** the request carried an Authorization header (a third party must never see one) */
  authorization: boolean
}

export interface FaultProxy {
  /** `127.0.0.1:<port>` */
  host: string
  url: string
  requests: ProxiedRequest[]
  /** replace the rules (counters restart) */
  setRules(rules: FaultRule[]): void
  stop(): Promise<void>
}

/** Starts a fault proxy forwarding to `target` (e.g. `http://127.0.0.1:5000`). */
export async function startFaultProxy(target: string, rules: FaultRule[] = []): Promise<FaultProxy> {
  const upstream = new URL(target)
  let active = rules.map(r => ({ rule: r, seen: 0, fired: 0 }))
  const requests: ProxiedRequest[] = []
  const sockets = new Set<Socket>()

  const pick = (req: IncomingMessage): Fault | undefined => {
    for (const a of active) {
      const { rule } = a
      if (rule.method && rule.method !== req.method) continue
      if (rule.path && !rule.path.test(req.url ?? '')) continue
      a.seen++
      if (a.seen <= (rule.after ?? 0)) continue
      if (a.fired >= (rule.times ?? 1)) continue
      a.fired++
      return rule.fault
    }
    return undefined
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const fault = pick(req)
    const entry: ProxiedRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      outcome: 'dropped',
      faulted: !!fault,
      authorization: req.headers.authorization !== undefined
    }
    requests.push(entry)
    if (fault && 'status' in fault) {
      req.resume()
      req.on('end', () => {
        const headers: Record<string, string> = { 'content-type': 'application/json' }
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter)
        entry.outcome = fault.status
        res.writeHead(fault.status, headers)
        res.end(
          fault.body ?? JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'injected fault' }] })
        )
      })
      return
    }
    if (fault && 'drop' in fault && fault.drop === 'before-response') {
      req.resume()
      req.socket.destroy()
      return
    }
    const path = fault && 'rewrite' in fault ? fault.rewrite(req.url ?? '/') : req.url
    const up = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers: req.headers },
      upRes => {
        entry.outcome = upRes.statusCode ?? 502
        if (fault && 'drop' in fault && fault.drop === 'mid-body') {
          const len = Number(upRes.headers['content-length'] ?? 0)
          res.writeHead(upRes.statusCode ?? 502, upRes.headers)
          let sent = 0
          const limit = Math.max(1, Math.floor(len / 2))
          upRes.on('data', (chunk: Buffer) => {
            if (sent >= limit) return
            const part = chunk.subarray(0, limit - sent)
            sent += part.length
            res.write(part)
            if (sent >= limit) {
              entry.outcome = 'dropped'
              setImmediate(() => res.socket?.destroy())
              upRes.destroy()
            }
          })
          upRes.on('end', () => {
            entry.outcome = 'dropped'
            res.socket?.destroy()
          })
          return
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.pipe(res)
      }
    )
    up.on('error', () => {
      entry.outcome = 'dropped'
      res.socket?.destroy()
    })
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
      active = r.map(rule => ({ rule, seen: 0, fired: 0 }))
    },
    stop: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

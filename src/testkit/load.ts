/**
 * A bounded load generator on loopback: requests at a fixed rate (one started every 1000/rate ms, whether
 * or not earlier ones have finished) for a bounded time or until stop(), each with its own timeout.
 * Counts 2xx, non-2xx (by status), failures (connection refused/reset, timeout) and latencies. New
 * connection per request by default (as browsers hitting a fresh nginx worker do not; the worst case for
 * the proxy), or keep-alive to the proxy.
 */
import http from 'node:http'

export interface LoadOptions {
  url: string
  /** requests per second (default 50) */
  rate?: number
  /** hard limit in ms (default 10 min); stop() ends earlier */
  maxMs?: number
  /** per-request timeout in ms (default 5000) */
  timeoutMs?: number
  keepAlive?: boolean
}

export interface LoadResult {
  sent: number
  ok: number
  /** answered with a status outside 2xx, by status */
  non2xx: Record<string, number>
  /** no answer: errors by code (ECONNREFUSED, ECONNRESET, TIMEOUT, …) */
  failed: Record<string, number>
  /** requests that did not get a 2xx */
  bad: number
  durationMs: number
  latency: { p50: number; p99: number; max: number }
  /** bodies seen (first 40 chars) and how often, e.g. to see versions switch */
  bodies: Record<string, number>
}

export interface Load {
  /** stops sending, waits for requests in flight, returns the counts */
  stop(): Promise<LoadResult>
  /** counts so far (requests in flight not included) */
  snapshot(): LoadResult
}

export function startLoad(opts: LoadOptions): Load {
  const rate = opts.rate ?? 50
  const maxMs = opts.maxMs ?? 600_000
  const timeoutMs = opts.timeoutMs ?? 5000
  const agent = new http.Agent({ keepAlive: !!opts.keepAlive, maxSockets: 256 })
  const start = Date.now()
  const lat: number[] = []
  const non2xx: Record<string, number> = {}
  const failed: Record<string, number> = {}
  const bodies: Record<string, number> = {}
  let sent = 0
  let ok = 0
  let stopped = false
  const inflight = new Set<Promise<void>>()

  const one = (): Promise<void> =>
    new Promise<void>(resolve => {
      const t0 = performance.now()
      let done = false
      const finish = (kind: 'ok' | 'status' | 'fail', key: string, body?: string): void => {
        if (done) return
        done = true
        lat.push(performance.now() - t0)
        if (kind === 'ok') {
          ok++
          const b = (body ?? '').trim().slice(0, 40)
          bodies[b] = (bodies[b] ?? 0) + 1
        } else if (kind === 'status') non2xx[key] = (non2xx[key] ?? 0) + 1
        else failed[key] = (failed[key] ?? 0) + 1
        resolve()
      }
      const req = http.get(opts.url, { agent, timeout: timeoutMs }, res => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => (body += c))
        res.on('end', () => {
          const s = res.statusCode ?? 0
          if (s >= 200 && s < 300) finish('ok', '', body)
          else finish('status', String(s))
        })
        res.on('error', e => finish('fail', (e as NodeJS.ErrnoException).code ?? e.message))
      })
      req.on('timeout', () => {
        req.destroy()
        finish('fail', 'TIMEOUT')
      })
      req.on('error', e => finish('fail', (e as NodeJS.ErrnoException).code ?? e.message))
    })

  const interval = 1000 / rate
  let timer: NodeJS.Timeout | undefined
  const tick = (): void => {
    if (stopped) return
    const now = Date.now()
    if (now - start >= maxMs) {
      stopped = true
      return
    }
    // catch up when the event loop was late, so the rate holds on average
    const due = Math.floor((now - start) / interval) + 1
    while (sent < due) {
      sent++
      const p = one()
      inflight.add(p)
      void p.then(() => inflight.delete(p))
    }
    timer = setTimeout(tick, Math.max(1, start + sent * interval - Date.now()))
  }
  tick()

  const snapshot = (): LoadResult => {
    const sorted = [...lat].sort((a, b) => a - b)
    const q = (p: number): number =>
      sorted.length
        ? Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] * 10) / 10
        : 0
    const nBad =
      Object.values(non2xx).reduce((a, b) => a + b, 0) + Object.values(failed).reduce((a, b) => a + b, 0)
    return {
      sent,
      ok,
      non2xx: { ...non2xx },
      failed: { ...failed },
      bad: nBad,
      durationMs: Date.now() - start,
      latency: { p50: q(0.5), p99: q(0.99), max: q(1) },
      bodies: { ...bodies }
    }
  }

  return {
    snapshot,
    async stop(): Promise<LoadResult> {
      stopped = true
      if (timer) clearTimeout(timer)
      await Promise.all([...inflight])
      agent.destroy()
      return snapshot()
    }
  }
}

/**
 * The proxy adapter tests' common parts: two tiny HTTP backends answering their name, and the switch
 * sequence under steady keep-alive load (loopback only, bounded): all to A → 50/50 → all to B.
 */
import { expect } from '@jest/globals'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ProxyAdapter } from '../../src/lib/proxy/types.js'
import { startLoad, type LoadResult } from '../../src/testkit/load.js'
import { sleep } from '../../src/testkit/net.js'

export interface Backends {
  a: number
  b: number
  stop: () => Promise<void>
}

/** Two node:http servers on free loopback ports answering `A` and `B` (idle keep-alive longer than the proxies'). */
export async function startBackends(): Promise<Backends> {
  const servers = await Promise.all(
    ['A', 'B'].map(
      name =>
        new Promise<http.Server>(resolve => {
          const s = http.createServer((_req, res) => res.end(name))
          s.keepAliveTimeout = 300_000
          s.listen(0, '127.0.0.1', () => resolve(s))
        })
    )
  )
  const port = (s: http.Server): number => (s.address() as AddressInfo).port
  return {
    a: port(servers[0]),
    b: port(servers[1]),
    stop: async () => {
      for (const s of servers) {
        s.closeAllConnections()
        await new Promise(r => s.close(r))
      }
    }
  }
}

/** Answers by body between two snapshots of one load (bodies not answered meanwhile left out). */
function delta(a: LoadResult, b: LoadResult): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, n] of Object.entries(b.bodies)) if (n > (a.bodies[k] ?? 0)) out[k] = n - (a.bodies[k] ?? 0)
  return out
}

export interface SwitchRun {
  load: LoadResult
  /** bodies answered while each step was live */
  phases: Record<string, number>[]
}

const STEP_MS = 1500
const RATE = 80

/** Runs `steps` one after the other under keep-alive load, STEP_MS each; `step` does one change. */
export async function underLoad(url: string, steps: (() => Promise<void>)[]): Promise<SwitchRun> {
  const load = startLoad({ url, rate: RATE, keepAlive: true, maxMs: 60_000, timeoutMs: 5000 })
  const phases: Record<string, number>[] = []
  try {
    await sleep(STEP_MS)
    for (const step of steps) {
      await step()
      await sleep(200) // requests sent before the change may still answer from the old routing
      const before = load.snapshot()
      await sleep(STEP_MS)
      phases.push(delta(before, load.snapshot()))
    }
  } finally {
    await load.stop()
  }
  return { load: load.snapshot(), phases }
}

/** all to A → 50/50 → all to B on `proxy` (service `web`), under load; checks each step's answers. */
export async function switchSequence(proxy: ProxyAdapter, url: string, be: Backends): Promise<SwitchRun> {
  const weights: [number, number][] = [
    [100, 0],
    [50, 50],
    [0, 100]
  ]
  const run = await underLoad(
    url,
    weights.map(([wa, wb]) => async () => {
      proxy.setWeights('web', [
        { port: be.a, weight: wa },
        { port: be.b, weight: wb }
      ])
      await proxy.test()
      await proxy.apply()
    })
  )
  const [allA, half, allB] = run.phases
  expect(allA.B ?? 0).toBe(0)
  expect(allA.A ?? 0).toBeGreaterThan(0)
  const total = (half.A ?? 0) + (half.B ?? 0)
  expect(total).toBeGreaterThan(0)
  // roughly half each (round robin behind one keep-alive client: close to exact)
  expect(half.A ?? 0).toBeGreaterThan(total * 0.3)
  expect(half.B ?? 0).toBeGreaterThan(total * 0.3)
  expect(allB.A ?? 0).toBe(0)
  expect(allB.B ?? 0).toBeGreaterThan(0)
  return run
}

/** The routing a read-back reports, as `port:weight` of the ports taking traffic. */
export const routing = (states: { port: number; weight: number; state: string }[]): string[] =>
  states
    .filter(s => s.weight > 0 && s.state === 'ready')
    .map(s => `${s.port}:${s.weight}`)
    .sort()

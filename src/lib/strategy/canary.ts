/**
 * The weighted canary of a blue-green deploy: once the new slot is healthy (and probed), the proxy moves
 * `steps` percent of the traffic to it, one step at a time (95/5 → 75/25 → 50/50), each held for `interval`
 * seconds. With rules, each step is judged by the metrics gate (src/lib/gate): the new slot's /metrics (and
 * the live slot's, as a baseline) scraped through the SSH connection at the step's start and end. The 100%
 * step is not taken here: it is the release store's close step (the proxy switch and `current` together).
 *
 * A breach, a failed scrape of the new slot or a proxy that refuses a step ends the walk: the caller sends
 * all traffic back to the live slot (the reset argv prepared before the first step, which the lock holder's
 * recovery also runs should the runner go away meanwhile) and removes the new slot.
 *
 * Plain module: the proxy, the remote and the clock come in; the figures go out.
 */
import { UserError, errorMessage } from '../errors.js'
import type { Logger } from '../log.js'
import type { Remote, Tunnel } from '../ssh/remote.js'
import type { ProxyAdapter } from '../proxy/types.js'
import { describeFigure, evaluate, gatePassed, gateVerdict, type RuleResult } from '../gate/gate.js'
import { parseRules, type Rule } from '../gate/rules.js'
import { scrape, type Scrape } from '../gate/scrape.js'
import type { StepFigures } from '../gate/summary.js'

export interface CanaryOptions {
  /** the new slot's share at each step, ascending, each 1-99 (100 is the close step's switch) */
  steps: number[]
  /** seconds each step holds before it is judged */
  intervalSec: number
  /** the gate's rules; none: each step only holds for the interval */
  rules: Rule[]
  /** the slot service whose /metrics is scraped (default the first of blue-green-ports) */
  service?: string
  /** default /metrics */
  metricsPath: string
  /** a rule with nothing counted in a step: passes (default) or fails */
  noData: 'pass' | 'fail'
}

/** One step as the ledger keeps it: the figures as numbers, the verdict, the reasons of the failed rules. */
export interface CanaryStepRecord {
  percent: number
  passed: boolean
  /** seconds the step was live */
  seconds: number
  rules: { id: string; new: number | null; old?: number | null; verdict: string; reason: string }[]
  /** why the step failed when it was not a rule (a scrape, the proxy) */
  error?: string
}

export interface CanaryRecord {
  proxy: string
  passed: boolean
  steps: CanaryStepRecord[]
}

/** What a walk found: the ledger's record, and the figures for the job summary. */
export interface CanaryRun {
  ok: boolean
  record: CanaryRecord
  figures: StepFigures[]
  /** one line: the failed step and its numbers */
  reason?: string
}

/** `canary-steps`: `5,25,50,100` → [5, 25, 50] (100 implied); '' → [] (no canary). */
export function parseCanarySteps(raw: string): number[] {
  const parts = raw
    .split(/[\s,]+/)
    .map(s => s.trim().replace(/%$/, ''))
    .filter(Boolean)
  const out: number[] = []
  for (const p of parts) {
    const n = Number(p)
    if (!/^\d+$/.test(p) || n < 1 || n > 100)
      throw new UserError(
        `Input 'canary-steps': '${p}' is not a percentage 1-100; give the new slot's share per step, e.g. '5,25,50,100'.`
      )
    if (out.length && n <= out[out.length - 1])
      throw new UserError(
        `Input 'canary-steps': ${n} follows ${out[out.length - 1]}; the steps must rise, e.g. '5,25,50,100'.`
      )
    out.push(n)
  }
  if (out.length > 20) throw new UserError(`Input 'canary-steps' has ${out.length} steps; give at most 20.`)
  return out.filter(n => n < 100)
}

export interface CanaryInputs {
  steps: string
  intervalSec: number
  rules: string
  service: string
  metricsPath: string
  noData: string
}

/** The canary inputs checked against the strategy; undefined when `canary-steps` is empty. */
export function parseCanary(
  raw: CanaryInputs,
  strategy: { strategy: string; slotServices: string[] }
): CanaryOptions | undefined {
  const steps = parseCanarySteps(raw.steps)
  const given = ['rules', 'service'].filter(k => raw[k as 'rules' | 'service'].trim())
  if (!raw.steps.trim()) {
    if (given.length)
      throw new UserError(
        `Input 'canary-${given[0]}' needs 'canary-steps' (e.g. '5,25,50,100'); set it, or remove 'canary-${given[0]}'.`
      )
    return undefined
  }
  if (strategy.strategy !== 'blue-green')
    throw new UserError(
      "Input 'canary-steps' needs 'strategy: blue-green' (the canary moves traffic between the two slots); set it, or remove 'canary-steps'."
    )
  const service = raw.service.trim() || undefined
  if (service && !strategy.slotServices.includes(service))
    throw new UserError(
      `Input 'canary-service' names '${service}', which is not in 'blue-green-ports' (${strategy.slotServices.join(', ')}).`
    )
  const path = raw.metricsPath.trim() || '/metrics'
  if (!/^\/[A-Za-z0-9._~/%?&=+-]*$/.test(path))
    throw new UserError(`Input 'canary-metrics-path' must be a path starting with '/', got '${path}'.`)
  const noData = raw.noData.trim() || 'pass'
  if (noData !== 'pass' && noData !== 'fail')
    throw new UserError(`Input 'canary-no-data' must be 'pass' or 'fail', got '${noData}'.`)
  return {
    steps,
    intervalSec: raw.intervalSec,
    rules: parseRules(raw.rules, 'canary-rules'),
    service,
    metricsPath: path,
    noData
  }
}

/** The slots of one walk: per proxied service the live and the new slot's host ports. */
export interface CanaryWalk {
  proxy: ProxyAdapter
  remote: Remote
  log: Logger
  label: string
  /** service → [live port, new port] */
  ports: Map<string, [number, number]>
  /** the service whose metrics the gate reads */
  gateService: string
  opts: CanaryOptions
  /** waits between a step's scrapes (injected: tests and the clock) */
  sleep?: (ms: number) => Promise<void>
}

const defaultSleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** A local URL reaching a host port: through the connection (Remote.tunnel), or directly. */
async function reach(remote: Remote, port: number): Promise<{ url: string; tunnel?: Tunnel }> {
  const tunnel = remote.tunnel ? await remote.tunnel(port) : undefined
  return { url: `http://127.0.0.1:${tunnel?.port ?? port}`, tunnel }
}

function stepRecord(
  percent: number,
  seconds: number,
  results: RuleResult[],
  error?: string
): CanaryStepRecord {
  return {
    percent,
    passed: !error && gatePassed(results),
    seconds: Math.round(seconds * 10) / 10,
    rules: results.map(r => ({
      id: r.id,
      new: r.new.value,
      ...(r.old ? { old: r.old.value } : {}),
      verdict: r.verdict,
      reason: r.reason
    })),
    ...(error ? { error } : {})
  }
}

/**
 * Walks the steps below 100%. Never throws for a failed step (ok: false, with the reason); the caller puts
 * the routing back. Each step is logged as it is taken and as it is judged.
 */
export async function walkCanary(w: CanaryWalk): Promise<CanaryRun> {
  const { proxy, log, label, opts } = w
  const sleep = w.sleep ?? defaultSleep
  const record: CanaryRecord = { proxy: proxy.name, passed: false, steps: [] }
  const figures: StepFigures[] = []
  const [oldPort, newPort] = w.ports.get(w.gateService)!
  const ends: { url: string; tunnel?: Tunnel }[] = []
  const fail = (reason: string): CanaryRun => ({ ok: false, record, figures, reason })
  try {
    if (opts.rules.length) {
      try {
        ends.push(await reach(w.remote, newPort), await reach(w.remote, oldPort))
      } catch (e) {
        return fail(`canary: cannot reach the slots' metrics (${errorMessage(e)})`)
      }
    }
    const read = async (i: 0 | 1): Promise<Scrape> =>
      scrape(ends[i].url, { path: opts.metricsPath, input: 'canary-rules', timeoutMs: 10_000 })
    /** the live slot's baseline is optional: a failed scrape of it is a warning */
    const baseline = async (): Promise<Scrape | undefined> => {
      try {
        return await read(1)
      } catch (e) {
        log.warning(
          `${label}: canary: the live slot's metrics (baseline) could not be read: ${errorMessage(e)}`
        )
        return undefined
      }
    }
    for (const pct of opts.steps) {
      const t0 = Date.now()
      for (const [service, [live, next]] of w.ports)
        proxy.setWeights(service, [
          { port: live, weight: 100 - pct },
          { port: next, weight: pct }
        ])
      try {
        await proxy.apply()
      } catch (e) {
        const why = errorMessage(e).split('\n')[0]
        record.steps.push(stepRecord(pct, 0, [], why))
        return fail(`canary ${pct}%: the proxy refused the step: ${why}`)
      }
      log.info(
        `${label}: canary: ${pct}% of the traffic to the new slot (${proxy.name}), for ${opts.intervalSec}s`
      )
      let results: RuleResult[] = []
      if (opts.rules.length) {
        try {
          const before = { next: await read(0), old: await baseline() }
          await sleep(opts.intervalSec * 1000)
          const after = { next: await read(0), old: await baseline() }
          const old = before.old && after.old ? { before: before.old, after: after.old } : undefined
          results = evaluate(opts.rules, { before: before.next, after: after.next }, old, {
            noData: opts.noData
          })
        } catch (e) {
          const why = errorMessage(e).split('\n')[0]
          record.steps.push(stepRecord(pct, (Date.now() - t0) / 1000, [], why))
          return fail(`canary ${pct}%: ${why}`)
        }
      } else await sleep(opts.intervalSec * 1000)
      record.steps.push(stepRecord(pct, (Date.now() - t0) / 1000, results))
      figures.push({ percent: pct, results })
      for (const r of results)
        log.info(`${label}: canary ${pct}%: ${r.id} ${describeFigure(r.new)} → ${r.verdict}`)
      if (!gatePassed(results)) return fail(`canary ${pct}%: ${gateVerdict(results)}`)
    }
    record.passed = true
    return { ok: true, record, figures }
  } finally {
    for (const e of ends) await e.tunnel?.close().catch(() => undefined)
  }
}

export type { Rule }

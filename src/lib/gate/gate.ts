/**
 * The metrics gate between canary steps: each rule judged on the NEW slot's increases over one window (two
 * scrapes taken an interval apart), with the OLD slot's figures over the same window beside it as a
 * baseline. Pure functions: the scrapes come in, results go out.
 *
 * Decisions:
 * - counters: a series that went back between the scrapes restarted; its whole second value counts (from 0,
 *   as Prometheus' increase() reads a reset); a series new in the second scrape counts whole (it was born in
 *   the window: client libraries create a label set on its first increment); one gone counts nothing;
 * - histograms: per series (label set without le), a bucket that went back or appeared resets the whole
 *   series (its buckets stay cumulative); the series' increases are summed by le, made monotonic, and the
 *   quantile is interpolated inside its bucket as histogram_quantile does; a rank in the +Inf bucket has no
 *   upper bound: it counts as above the threshold (the buckets cannot show it under it);
 * - no data (nothing counted in the window: no requests, no observations) is its own verdict; by default it
 *   passes: a quiet step is no evidence of harm, the probe and health checks already proved the slot serves,
 *   and failing would roll back every deploy in a quiet hour (`noData: 'fail'` makes traffic a requirement);
 * - a selector matching no series at all fails: the metric is misnamed or not exported, and a gate that
 *   measures nothing must not pass silently (a ratio's numerator may match none: no 5xx answered yet).
 */
import type { Sample, Scrape } from './scrape.js'
import { matches, type Comparison, type Rule, type Selector } from './rules.js'

/** Two scrapes of one slot, an interval apart. */
export interface Window {
  before: Scrape
  after: Scrape
}

export interface Figure {
  /** null: no data in the window */
  value: number | null
  /** the numbers behind the value: `52/510`, `20 observations` */
  detail: string
  /** series whose counters went back (restarted) within the window */
  resets: number
  /** set when the selector matched nothing: what is missing */
  missing?: string
  /** quantile: the rank fell in the +Inf bucket; value is the largest finite bound, the quantile is above it */
  above?: boolean
}

export type Verdict = 'pass' | 'fail' | 'no-data'

export interface RuleResult {
  id: string
  rule: Rule
  new: Figure
  old?: Figure
  threshold: number
  verdict: Verdict
  /** the verdict under the no-data policy */
  passed: boolean
  /** one line with the numbers */
  reason: string
}

export interface GateOptions {
  /** what a rule with no data in the window does (default 'pass') */
  noData?: 'pass' | 'fail'
}

export interface Bucket {
  /** upper bound (le) */
  le: number
  /** cumulative count */
  count: number
}

const labelKey = (labels: Record<string, string>, except?: string): string =>
  Object.keys(labels)
    .filter(k => k !== except)
    .sort()
    .map(k => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')

/** le as Prometheus parses it (Go ParseFloat: +Inf, Inf, inf, infinity…). */
export function leValue(s: string): number {
  return /^[+]?inf(inity)?$/i.test(s) ? Infinity : Number(s)
}

/** Σ increase over the window of the counters `sel` picks (see the decisions above). */
export function increase(sel: Selector, w: Window): { total: number; series: number; reset: string[] } {
  const before = new Map<string, number>()
  for (const s of w.before.samples)
    if (matches(sel, s.name, s.labels)) before.set(labelKey(s.labels), s.value)
  let total = 0
  let series = 0
  const reset: string[] = []
  for (const s of w.after.samples) {
    if (!matches(sel, s.name, s.labels)) continue
    series++
    if (Number.isNaN(s.value)) continue
    const key = labelKey(s.labels)
    const prev = before.get(key)
    if (prev !== undefined && s.value < prev) reset.push(`${s.name}{${key}}`)
    total += prev === undefined || s.value < prev ? s.value : s.value - prev
  }
  return { total, series, reset }
}

/** The increases of histogram `sel`'s buckets over the window, summed by le over its series, sorted by le. */
export function bucketIncreases(
  sel: Selector,
  w: Window
): { buckets: Bucket[]; series: number; resets: number } {
  const bucketSel: Selector = { ...sel, metric: `${sel.metric}_bucket` }
  const group = (scrape: Scrape): Map<string, Map<string, number>> => {
    const out = new Map<string, Map<string, number>>()
    for (const s of scrape.samples) {
      if (!Object.hasOwn(s.labels, 'le') || !matches(bucketSel, s.name, s.labels)) continue
      const k = labelKey(s.labels, 'le')
      let g = out.get(k)
      if (!g) out.set(k, (g = new Map()))
      g.set(s.labels.le, s.value)
    }
    return out
  }
  const before = group(w.before)
  const after = group(w.after)
  const sum = new Map<number, number>()
  let resets = 0
  for (const [k, g] of after) {
    const prev = before.get(k)
    const reset = prev !== undefined && [...g].some(([le, v]) => !(prev.get(le)! <= v))
    if (reset) resets++
    for (const [le, v] of g) {
      const d = prev === undefined || reset ? v : v - prev.get(le)!
      const bound = leValue(le)
      sum.set(bound, (sum.get(bound) ?? 0) + d)
    }
  }
  const buckets = [...sum].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le)
  return { buckets, series: after.size, resets }
}

/**
 * Prometheus' histogram_quantile on cumulative buckets (promql/quantile.go bucketQuantile): NaN without a
 * +Inf bucket, with fewer than two buckets or no observations; the highest finite bound when the rank falls
 * in the +Inf bucket; else linear interpolation inside the bucket (the first bucket starts at 0 unless its
 * bound is not positive). Counts are made monotonic first, as Prometheus does.
 */
export function histogramQuantile(q: number, input: Bucket[]): number {
  if (Number.isNaN(q)) return NaN
  if (q < 0) return -Infinity
  if (q > 1) return Infinity
  const buckets = [...input].sort((a, b) => a.le - b.le)
  if (buckets.length === 0 || buckets[buckets.length - 1].le !== Infinity) return NaN
  let max = -Infinity
  const counts = buckets.map(b => (max = Math.max(max, b.count)))
  if (buckets.length < 2) return NaN
  const n = buckets.length
  const observations = counts[n - 1]
  if (observations === 0 || Number.isNaN(observations)) return NaN
  let rank = q * observations
  let b = 0
  while (b < n - 1 && !(counts[b] >= rank)) b++
  if (b === n - 1) return buckets[n - 2].le
  if (b === 0 && buckets[0].le <= 0) return buckets[0].le
  let start = 0
  let count = counts[b]
  if (b > 0) {
    start = buckets[b - 1].le
    count -= counts[b - 1]
    rank -= counts[b - 1]
  }
  return start + (buckets[b].le - start) * (rank / count)
}

/** A sample that only grows (a counter, a histogram's or summary's _count/_sum/_bucket, an untyped _total). */
function monotonic(s: Sample): boolean {
  if (s.type === 'counter') return true
  if (s.type === 'histogram' || s.type === 'summary') return /_(count|sum|bucket)$/.test(s.name)
  return (s.type === '' || s.type === 'untyped' || s.type === 'unknown') && s.name.endsWith('_total')
}

const suffix = (resets: number): string => (resets ? `, counter reset on ${resets} series` : '')

const none = (sel: Selector, what = 'series'): Figure => ({
  value: null,
  detail: '',
  resets: 0,
  missing: `no ${what} match ${sel.text}`
})

/** A rule's figure on one slot's window. */
export function figure(rule: Rule, w: Window): Figure {
  const e = rule.expr
  switch (e.kind) {
    case 'ratio': {
      const num = increase(e.num, w)
      const den = increase(e.den, w)
      if (den.series === 0) return none(e.den)
      const resets = new Set([...num.reset, ...den.reset]).size
      const detail = `${fmt(num.total)}/${fmt(den.total)}${suffix(resets)}`
      return { value: den.total > 0 ? num.total / den.total : null, detail, resets }
    }
    case 'quantile': {
      const h = bucketIncreases(e.histogram, w)
      if (h.series === 0) return none(e.histogram, `${e.histogram.metric}_bucket series`)
      const n = h.buckets.length
      if (h.buckets[n - 1].le !== Infinity || n < 2)
        return {
          ...none(e.histogram),
          missing: `${e.histogram.text} has ${h.buckets[n - 1].le !== Infinity ? 'no' : 'only the'} le="+Inf" bucket`
        }
      const total = h.buckets[n - 1].count
      const detail = `${fmt(total)} observations${suffix(h.resets)}`
      if (!(total > 0)) return { value: null, detail, resets: h.resets }
      const value = histogramQuantile(e.q, h.buckets)
      const above = n >= 2 && h.buckets[n - 2].count < e.q * total
      return { value, detail, resets: h.resets, ...(above ? { above } : {}) }
    }
    case 'increase': {
      const inc = increase(e.of, w)
      if (inc.series === 0) return none(e.of)
      const seconds = (w.after.at - w.before.at) / 1000
      const value = e.perSecond ? (seconds > 0 ? inc.total / seconds : null) : inc.total
      return {
        value,
        detail: `${fmt(inc.total)} in ${fmt(seconds)} s${suffix(inc.reset.length)}`,
        resets: inc.reset.length
      }
    }
    case 'value': {
      const picked = w.after.samples.filter(s => matches(e.of, s.name, s.labels))
      if (picked.length === 0) return none(e.of)
      if (picked.every(monotonic)) {
        const inc = increase(e.of, w)
        const resets = inc.reset.length
        return { value: inc.total, detail: `increase${suffix(resets)}`, resets }
      }
      const value = picked.reduce((a, s) => a + s.value, 0)
      return { value, detail: `${picked.length} series at the end`, resets: 0 }
    }
  }
}

const HOLDS: Record<Comparison, (a: number, b: number) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b
}

/** A number for a report: up to 3 decimals (small ones to 3 digits), no trailing zeros. */
export function fmt(n: number): string {
  if (!Number.isFinite(n) || Number.isInteger(n)) return String(n)
  const a = Math.abs(n)
  return String(Number(a >= 100 ? n.toFixed(1) : a >= 0.001 ? n.toFixed(3) : n.toPrecision(3)))
}

/** A figure in words: `0.102 (52/510)`, `no data (0/0)`, `above 1 (…)`. */
export function describeFigure(f: Figure): string {
  if (f.missing) return `n/a (${f.missing})`
  if (f.value === null) return `no data${f.detail ? ` (${f.detail})` : ''}`
  return `${f.above ? 'above ' : ''}${fmt(f.value)} (${f.detail})`
}

/** Judges each rule on the new slot's window; `old`, when given, adds the old slot's figures as the baseline. */
export function evaluate(rules: Rule[], next: Window, old?: Window, o: GateOptions = {}): RuleResult[] {
  const noData = o.noData ?? 'pass'
  return rules.map(rule => {
    const f = figure(rule, next)
    const of = old ? figure(rule, old) : undefined
    const baseline = of ? `; old slot ${describeFigure(of)}` : ''
    const base = { id: rule.id, rule, new: f, ...(of ? { old: of } : {}), threshold: rule.threshold }
    if (f.missing)
      return {
        ...base,
        verdict: 'fail' as const,
        passed: false,
        reason: `${rule.id}: ${f.missing} in the new slot's metrics; check the metric name and labels${baseline}`
      }
    if (f.value === null)
      return {
        ...base,
        verdict: 'no-data' as const,
        passed: noData === 'pass',
        reason: `${rule.id}: no data in the window${f.detail ? ` (${f.detail})` : ''}, ${noData === 'pass' ? 'passes (nothing counted is no evidence of harm)' : 'fails (no-data: fail)'}${baseline}`
      }
    // above the largest finite bucket: unbounded, so above any threshold
    const v = f.above ? Infinity : f.value
    const ok = HOLDS[rule.op](v, rule.threshold)
    const rel = v < rule.threshold ? '<' : v > rule.threshold ? '>' : '='
    return {
      ...base,
      verdict: ok ? ('pass' as const) : ('fail' as const),
      passed: ok,
      reason: `${rule.id} ${describeFigure(f)} ${rel} ${fmt(rule.threshold)}${ok ? '' : ` (wanted ${rule.op} ${fmt(rule.threshold)})`}${baseline}`
    }
  })
}

/** Whether the step may go on: every rule passed (no data counted as the policy said). */
export const gatePassed = (results: RuleResult[]): boolean => results.every(r => r.passed)

/** One line: `metrics gate passed (2 rules)` or the failing rules' reasons. */
export function gateVerdict(results: RuleResult[]): string {
  const failed = results.filter(r => !r.passed)
  if (failed.length === 0) return `metrics gate passed (${results.length} rules)`
  return `metrics gate failed: ${failed.map(r => r.reason).join('; ')}`
}

/**
 * The metrics gate's SLO rules, one a line (`#` lines and blank lines skipped):
 *
 *   <id>: <expr> <op> <threshold>
 *
 *   id         [A-Za-z][A-Za-z0-9_.-]*, unique; names the rule in the report
 *   op         < <= > >=  (the condition that PASSES)
 *   threshold  a number, or a number with % (÷100) or ms (÷1000, for seconds)
 *   expr       A / B                 ratio of increases: sum(increase(A)) / sum(increase(B)) over the window
 *              quantile(φ, H)        φ-quantile (0 < φ < 1) of histogram H from its buckets' increases
 *              H  with id pNN        the same, φ = NN/100 (p95, p99, p99.9)
 *              increase(S), rate(S)  increase of counter S over the window (rate: per second)
 *              S                     one metric: a counter's increase, a gauge's value at the window's end
 *                                    (summed over the matching series)
 *   selector   metric_name or metric_name{label op "value", ...}, op one of = != =~ !~ (regexes anchored,
 *              as in PromQL)
 *
 * e.g.  error-ratio: http_requests_total{code=~"5.."} / http_requests_total < 0.01
 *       p95: http_request_duration_seconds < 300ms
 *
 * Every error is a UserError naming the input, the line and the fix.
 */
import { UserError } from '../errors.js'

export type MatchOp = '=' | '!=' | '=~' | '!~'
export type Comparison = '<' | '<=' | '>' | '>='

export interface Matcher {
  label: string
  op: MatchOp
  value: string
  /** =~ and !~: the value, anchored */
  re?: RegExp
}

export interface Selector {
  metric: string
  matchers: Matcher[]
  /** as written, for reports */
  text: string
}

export type Expr =
  | { kind: 'ratio'; num: Selector; den: Selector }
  | { kind: 'quantile'; q: number; histogram: Selector }
  | { kind: 'increase'; of: Selector; perSecond: boolean }
  | { kind: 'value'; of: Selector }

export interface Rule {
  id: string
  expr: Expr
  op: Comparison
  threshold: number
  /** the line as written */
  text: string
}

const ID = /^([A-Za-z][A-Za-z0-9_.-]*)\s*:(.*)$/
const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/
const PNN = /^p(\d{1,2}(?:\.\d+)?)$/
const CALL = /^(quantile|increase|rate)\s*\((.*)\)$/s

export const EXAMPLE = 'error-ratio: http_requests_total{code=~"5.."} / http_requests_total < 0.01'

class LineError extends Error {}

/** Parses the rules text; `input` names the setting in errors. */
export function parseRules(raw: string, input = 'canary-rules'): Rule[] {
  const rules: Rule[] = []
  const lines = raw.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i].trim()
    if (text === '' || text.startsWith('#')) continue
    try {
      const rule = parseRule(text)
      if (rules.some(r => r.id === rule.id))
        throw new LineError(`the id '${rule.id}' is used twice; give each rule its own id`)
      rules.push(rule)
    } catch (e) {
      if (!(e instanceof LineError)) throw e
      throw new UserError(`Input '${input}' line ${i + 1} ('${text}'): ${e.message}.`)
    }
  }
  return rules
}

function parseRule(text: string): Rule {
  const m = ID.exec(text)
  if (!m) throw new LineError(`a rule is '<id>: <expr> <op> <threshold>', e.g. '${EXAMPLE}'`)
  const id = m[1]
  const body = m[2].trim()
  const at = lastComparison(body)
  if (!at)
    throw new LineError(`no comparison: end the rule with < <= > or >= and a threshold, e.g. '${EXAMPLE}'`)
  const threshold = parseThreshold(body.slice(at.end).trim())
  const left = body.slice(0, at.start).trim()
  if (left === '') throw new LineError(`nothing to compare before '${at.op}': name a metric or a ratio`)
  return { id, expr: parseExpr(id, left), op: at.op, threshold, text }
}

/** Indexes of the characters of s outside double quotes and {...}. */
function topLevel(s: string): number[] {
  const out: number[] = []
  let quote = false
  let depth = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (quote) {
      if (c === '\\') i++
      else if (c === '"') quote = false
    } else if (c === '"') quote = true
    else if (c === '{') depth++
    else if (c === '}') depth--
    else if (depth === 0) out.push(i)
  }
  return out
}

/** The last < <= > >= outside quotes and braces. */
function lastComparison(s: string): { start: number; end: number; op: Comparison } | undefined {
  const at = topLevel(s).filter(i => s[i] === '<' || s[i] === '>')
  if (at.length === 0) return undefined
  const i = at[at.length - 1]
  const eq = s[i + 1] === '='
  return { start: i, end: i + (eq ? 2 : 1), op: (eq ? s[i] + '=' : s[i]) as Comparison }
}

function parseThreshold(raw: string): number {
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*(%|ms|s)?$/i.exec(raw)
  if (!m)
    throw new LineError(
      `threshold '${raw}' is not a number; write e.g. 0.01, 1%, 0.3 or 300ms after the comparison`
    )
  const n = Number(m[1])
  const unit = (m[2] ?? '').toLowerCase()
  return unit === '%' ? n / 100 : unit === 'ms' ? n / 1000 : n
}

function parseExpr(id: string, s: string): Expr {
  const call = CALL.exec(s)
  if (call) {
    const [, fn, args] = call
    if (fn === 'quantile') {
      const comma = args.indexOf(',')
      if (comma < 0) throw new LineError(`quantile takes two arguments: quantile(0.95, histogram_name{...})`)
      const q = Number(args.slice(0, comma).trim())
      if (!(q > 0 && q < 1))
        throw new LineError(`quantile '${args.slice(0, comma).trim()}' must be between 0 and 1, e.g. 0.95`)
      return { kind: 'quantile', q, histogram: histogramSelector(args.slice(comma + 1)) }
    }
    return { kind: 'increase', of: selector(args), perSecond: fn === 'rate' }
  }
  const slash = topLevel(s).find(i => s[i] === '/')
  if (slash !== undefined) {
    return { kind: 'ratio', num: selector(s.slice(0, slash)), den: selector(s.slice(slash + 1)) }
  }
  const p = PNN.exec(id)
  if (p) {
    const q = Number(p[1]) / 100
    if (!(q > 0 && q < 1)) throw new LineError(`'${id}' is no quantile: use p1 to p99.9`)
    return { kind: 'quantile', q, histogram: histogramSelector(s) }
  }
  return { kind: 'value', of: selector(s) }
}

function histogramSelector(raw: string): Selector {
  const sel = selector(raw)
  if (sel.metric.endsWith('_bucket'))
    throw new LineError(
      `name the histogram without _bucket: '${sel.metric.slice(0, -7)}' (its _bucket samples are read)`
    )
  if (sel.matchers.some(m => m.label === 'le'))
    throw new LineError(`drop the le matcher: the quantile reads every bucket of the histogram`)
  return sel
}

/** metric_name{label op "value", ...} */
export function selector(raw: string): Selector {
  const text = raw.trim()
  const name = METRIC.exec(text)
  if (!name)
    throw new LineError(`'${text}' is not a metric selector; write metric_name or metric_name{label="value"}`)
  const metric = name[0]
  let p = metric.length
  const matchers: Matcher[] = []
  const rest = (): string => text.slice(p)
  const blanks = (): void => {
    while (p < text.length && /\s/.test(text[p])) p++
  }
  blanks()
  if (p < text.length) {
    if (text[p] !== '{')
      throw new LineError(`unexpected '${rest()}' after the metric name ${metric}; labels go in {...}`)
    p++
    for (;;) {
      blanks()
      if (text[p] === '}') {
        p++
        break
      }
      const label = LABEL.exec(rest())
      if (!label) throw new LineError(`expected a label name in ${metric}{...} at '${rest()}'`)
      p += label[0].length
      blanks()
      const op = (['=~', '!~', '!=', '='] as MatchOp[]).find(o => text.startsWith(o, p))
      if (!op) throw new LineError(`expected = != =~ or !~ after the label ${label[0]} in ${metric}{...}`)
      p += op.length
      blanks()
      if (text[p] !== '"')
        throw new LineError(`the value of ${label[0]} in ${metric}{...} must be in double quotes`)
      const value = quoted(text, p + 1, label[0])
      p = value.end
      const m: Matcher = { label: label[0], op, value: value.text }
      if (op === '=~' || op === '!~') {
        try {
          m.re = new RegExp(`^(?:${value.text})$`)
        } catch (e) {
          throw new LineError(
            `the regex "${value.text}" of ${label[0]} is invalid (${(e as Error).message}); fix it or use = / !=`
          )
        }
      }
      matchers.push(m)
      blanks()
      if (text[p] === ',') {
        p++
        continue
      }
      if (text[p] === '}') {
        p++
        break
      }
      throw new LineError(`expected , or } after the value of ${label[0]} in ${metric}{...}`)
    }
    blanks()
    if (p < text.length) throw new LineError(`unexpected '${rest()}' after ${text.slice(0, p)}`)
  }
  return { metric, matchers, text }
}

/** A double-quoted value from p (just after the quote): \\ \" \n escapes. */
function quoted(s: string, p: number, label: string): { text: string; end: number } {
  let out = ''
  for (; p < s.length; p++) {
    const c = s[p]
    if (c === '"') return { text: out, end: p + 1 }
    if (c === '\\') {
      const e = s[++p]
      if (e === 'n') out += '\n'
      else if (e === '\\' || e === '"') out += e
      else out += '\\' + (e ?? '') // a regex escape such as \d stays as written
    } else out += c
  }
  throw new LineError(`the value of ${label} has no closing quote`)
}

/** Whether a sample (name, labels) is one the selector picks. A missing label is the empty string, as in PromQL. */
export function matches(sel: Selector, name: string, labels: Record<string, string>): boolean {
  if (name !== sel.metric) return false
  for (const m of sel.matchers) {
    const v = Object.hasOwn(labels, m.label) ? labels[m.label] : ''
    const ok = m.re ? m.re.test(v) : v === m.value
    if (ok !== (m.op === '=' || m.op === '=~')) return false
  }
  return true
}

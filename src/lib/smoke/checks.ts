/**
 * The `checks` input: a YAML list of HTTP checks, parsed with line numbers so that every error names the
 * line and the key. An item is a mapping of the keys below, or a bare path string (`- /health`).
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml'
import { UserError } from '../errors.js'

export interface Check {
  path: string
  method: string
  /** accepted statuses: exact codes and classes like `2xx` */
  status: (number | string)[]
  /** regular expression the body must match */
  body?: RegExp
  /** JSON value the body must contain (subset match) */
  json?: unknown
  format?: 'prometheus'
  requireMetrics: string[]
  maxLatencyMs?: number
  headers: Record<string, string>
  data?: string
  /** Content-Type for `data` given as YAML/JSON data (sent unless `headers` sets one; not a secret) */
  dataType?: string
  /** line of the check in the `checks` input (undefined for the defaults) */
  line?: number
}

const CHECK_KEYS = [
  'path',
  'method',
  'status',
  'body',
  'json',
  'format',
  'require-metrics',
  'max-latency-ms',
  'headers',
  'data'
] as const

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

function defaultChecks(): Check[] {
  const base = { method: 'GET', status: [200], requireMetrics: [], headers: {} }
  return [
    { ...base, path: '/health' },
    { ...base, path: '/readyz' },
    { ...base, path: '/metrics', format: 'prometheus' }
  ]
}

/** Parses the `checks` input; empty text gives the default checks. */
export function parseChecks(text: string, inputName = 'checks'): Check[] {
  if (text.trim() === '') return defaultChecks()
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false })
  if (doc.errors.length > 0) {
    const e = doc.errors[0]
    const line = e.linePos?.[0]?.line ?? lines.linePos(e.pos[0]).line
    throw new UserError(
      `Input '${inputName}' is not valid YAML at line ${line}: ${e.message.split('\n')[0]}. Write a YAML list, e.g. '- path: /health'.`,
      e.message
    )
  }
  const root = doc.contents
  if (root === null || (isScalar(root) && (root.value === null || root.value === ''))) return defaultChecks()
  const lineOf = (n: Node | null | undefined): number => (n?.range ? lines.linePos(n.range[0]).line : 1)
  if (!isSeq(root)) {
    throw new UserError(
      `Input '${inputName}' (line ${lineOf(root as Node)}) must be a YAML list of checks, each starting with '- ', e.g. '- path: /health'.`
    )
  }
  const checks: Check[] = []
  root.items.forEach((item, i) => {
    const where = `Input '${inputName}' line ${lineOf(item as Node)} (check ${i + 1})`
    if (isScalar(item) && typeof item.value === 'string') {
      checks.push({ ...defaultChecks()[0], path: normalPath(item.value, where), line: lineOf(item) })
      return
    }
    if (!isMap(item))
      throw new UserError(
        `${where}: a check is a mapping like 'path: /health' or a bare path, not ${describe(item as Node)}.`
      )
    const fields = new Map<string, { value: unknown; line: number }>()
    for (const pair of item.items) {
      const keyNode = pair.key as Node | null
      const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode)
      const line = lineOf(keyNode)
      if (!(CHECK_KEYS as readonly string[]).includes(key)) {
        const near = suggest(key)
        throw new UserError(
          `Input '${inputName}' line ${line}: unknown key '${key}' in check ${i + 1}${near ? `; did you mean '${near}'?` : ''} Known keys: ${CHECK_KEYS.join(', ')}.`
        )
      }
      const v = pair.value as Node | null
      fields.set(key, {
        value: v && typeof (v as { toJSON?: unknown }).toJSON === 'function' ? v.toJSON() : v,
        line: lineOf(v ?? keyNode)
      })
    }
    checks.push(buildCheck(fields, where, lineOf(item as Node), i + 1, inputName))
  })
  if (checks.length === 0) return defaultChecks()
  return checks
}

function buildCheck(
  f: Map<string, { value: unknown; line: number }>,
  where: string,
  line: number,
  n: number,
  inputName: string
): Check {
  const bad = (key: string, what: string): UserError =>
    new UserError(`Input '${inputName}' line ${f.get(key)?.line ?? line}: '${key}' of check ${n} ${what}.`)
  const get = (k: string): unknown => f.get(k)?.value
  const path = get('path')
  if (path === undefined) throw new UserError(`${where}: the check has no 'path'; add e.g. 'path: /health'.`)
  if (typeof path !== 'string' || path.trim() === '') throw bad('path', "must be a path like '/health'")

  let method = 'GET'
  if (get('method') !== undefined) {
    const m = String(get('method')).toUpperCase()
    if (!METHODS.includes(m)) throw bad('method', `must be one of ${METHODS.join(', ')}`)
    method = m
  } else if (get('data') !== undefined) method = 'POST'

  let status: (number | string)[] = [200]
  if (get('status') !== undefined) {
    const raw = get('status')
    const items = Array.isArray(raw) ? raw : [raw]
    if (items.length === 0) throw bad('status', 'must name at least one status')
    status = items.map(s => {
      if (typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 599) return s
      if (typeof s === 'string' && /^\d{3}$/.test(s) && Number(s) >= 100 && Number(s) <= 599) return Number(s)
      if (typeof s === 'string' && /^[1-5]xx$/i.test(s)) return s.toLowerCase()
      throw bad(
        'status',
        `must be an HTTP status (100-599), a class like '2xx', or a list of those; got ${JSON.stringify(s)}`
      )
    })
  }

  let body: RegExp | undefined
  if (get('body') !== undefined) {
    const raw = get('body')
    if (typeof raw !== 'string' && typeof raw !== 'number')
      throw bad('body', 'must be a regular expression (a string)')
    try {
      body = new RegExp(String(raw), 'm')
    } catch (e) {
      throw bad(
        'body',
        `is not a valid regular expression (${(e as Error).message}); quote it and escape special characters`
      )
    }
  }

  let format: 'prometheus' | undefined
  if (get('format') !== undefined) {
    if (get('format') !== 'prometheus') throw bad('format', "must be 'prometheus' (the only format checked)")
    format = 'prometheus'
  }

  let requireMetrics: string[] = []
  if (get('require-metrics') !== undefined) {
    const raw = get('require-metrics')
    const items = Array.isArray(raw)
      ? raw
      : typeof raw === 'string'
        ? raw.split(/[\s,]+/).filter(Boolean)
        : null
    if (!items || items.some(x => typeof x !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(x))) {
      throw bad('require-metrics', "must be a list of metric names like 'http_requests_total'")
    }
    requireMetrics = items as string[]
    format = 'prometheus'
  }

  let maxLatencyMs: number | undefined
  if (get('max-latency-ms') !== undefined) {
    const raw = get('max-latency-ms')
    if (typeof raw !== 'number' || !Number.isFinite(raw) || raw <= 0)
      throw bad('max-latency-ms', 'must be a positive number of milliseconds')
    maxLatencyMs = raw
  }

  const headers: Record<string, string> = {}
  if (get('headers') !== undefined) {
    const raw = get('headers')
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw bad('headers', "must be a mapping of header names to values, e.g. 'headers: { X-Token: abc }'")
    }
    for (const [k, v] of Object.entries(raw)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k)) throw bad('headers', `has an invalid header name '${k}'`)
      if (v === null || typeof v === 'object') throw bad('headers', `value of '${k}' must be a string`)
      const s = String(v)
      if (/[\r\n]/.test(s)) throw bad('headers', `value of '${k}' must be on one line`)
      headers[k] = s
    }
  }

  let data: string | undefined
  let dataType: string | undefined
  if (get('data') !== undefined) {
    const raw = get('data')
    data = typeof raw === 'string' ? raw : JSON.stringify(raw)
    if (typeof raw !== 'string') dataType = 'application/json'
  }

  return {
    path: normalPath(path, where),
    method,
    status,
    body,
    json: get('json'),
    format,
    requireMetrics,
    maxLatencyMs,
    headers,
    data,
    dataType,
    line
  }
}

function normalPath(p: string, where: string): string {
  const t = p.trim()
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(t)) {
    throw new UserError(
      `${where}: 'path' must be relative to the 'url' input (e.g. '/health'), not a full URL.`
    )
  }
  return t.startsWith('/') ? t : `/${t}`
}

function describe(n: Node): string {
  if (isSeq(n)) return 'a list'
  if (isScalar(n)) return `${typeof n.value} ${JSON.stringify(n.value)}`
  return 'this'
}

/** The known key closest to a mistyped one (underscores, case, one or two typos). */
function suggest(key: string): string | undefined {
  const k = key.toLowerCase().replace(/_/g, '-')
  let best: string | undefined
  let bestD = 3
  for (const c of CHECK_KEYS) {
    const d = distance(k, c)
    if (d < bestD) [best, bestD] = [c, d]
  }
  return best
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) dp[0][j] = j
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      dp[i][j] = Math.min(
        dp[i - 1][j] + 1,
        dp[i][j - 1] + 1,
        dp[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)
      )
  return dp[a.length][b.length]
}

/** True when the status code is accepted by the check. */
export function statusAccepted(check: Pick<Check, 'status'>, code: number): boolean {
  return check.status.some(s =>
    typeof s === 'number' ? s === code : Math.floor(code / 100) === Number(s[0])
  )
}

/** Subset match: objects need the expected keys (recursively), arrays need each expected item somewhere, scalars equal. */
export function jsonContains(actual: unknown, expected: unknown): boolean {
  if (expected === null || typeof expected !== 'object') return actual === expected
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && expected.every(e => actual.some(a => jsonContains(a, e)))
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false
  const a = actual as Record<string, unknown>
  return Object.entries(expected as Record<string, unknown>).every(
    ([k, v]) => k in a && jsonContains(a[k], v)
  )
}

/** The `headers` input: `Name: value` lines (blank lines and `#` comments skipped). */
export function parseHeaderLines(text: string, inputName = 'headers'): Record<string, string> {
  const out: Record<string, string> = {}
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    const name = colon > 0 ? line.slice(0, colon).trim() : ''
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      // never echo the line: it may hold a credential
      throw new UserError(
        `Input '${inputName}' line ${i + 1} is not 'Name: value' (e.g. 'Authorization: Bearer \${{ secrets.TOKEN }}').`
      )
    }
    out[name] = line.slice(colon + 1).trim()
  })
  return out
}

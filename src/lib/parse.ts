import { UserError } from './errors.js'

/** Plain parsers for action inputs; they know nothing of @actions/core so the library can reuse them. */

export function parseBoolean(name: string, raw: string, fallback: boolean): boolean {
  const v = raw.trim()
  if (v === '') return fallback
  if (/^true$/i.test(v)) return true
  if (/^false$/i.test(v)) return false
  throw new UserError(
    `Input '${name}' must be true or false, got '${v}'. Set '${name}: true' or '${name}: false'.`
  )
}

/** One item per line; commas also accepted. Blank items and surrounding spaces are dropped. */
export function parseList(raw: string, { commas = true }: { commas?: boolean } = {}): string[] {
  const out: string[] = []
  for (const line of raw.split(/\r?\n/)) {
    const parts = commas ? line.split(',') : [line]
    for (const p of parts) {
      const t = p.trim()
      if (t !== '' && !t.startsWith('#')) out.push(t)
    }
  }
  return out
}

export function parseInteger(
  name: string,
  raw: string,
  fallback: number,
  { min = 0, max = Number.MAX_SAFE_INTEGER }: { min?: number; max?: number } = {}
): number {
  const v = raw.trim()
  if (v === '') return fallback
  if (!/^-?\d+$/.test(v)) {
    throw new UserError(
      `Input '${name}' must be a whole number, got '${v}'. Write it as plain digits, e.g. '${name}: ${fallback}'.`
    )
  }
  const n = Number(v)
  if (n < min || n > max) {
    throw new UserError(`Input '${name}' must be between ${min} and ${max}, got ${n}.`)
  }
  return n
}

/** `key=value` lines (commas not accepted as separators, values may contain them). */
export function parseKeyValues(name: string, raw: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of parseList(raw, { commas: false })) {
    const i = line.indexOf('=')
    if (i <= 0) throw new UserError(`Input '${name}': line '${line}' is not of the form key=value.`)
    out.set(line.slice(0, i).trim(), line.slice(i + 1).trim())
  }
  return out
}

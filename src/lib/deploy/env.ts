/**
 * A release's `.env` from three inputs: `env-file` (the whole file, a secret), `env` (plain KEY=value
 * lines) and `env-secrets` (KEY=value lines, secrets). A key given later wins: env-file < env < env-secrets;
 * a key in both `env` and `env-secrets` is refused (is it a secret or not?).
 *
 * - With `env-file`: the release's `.env` is that file with the other two merged in (built here).
 * - Without it, with `env`/`env-secrets`: the live release's `.env` is copied on the host and the keys are
 *   merged in there (ENV_MERGE in the upload), so the live secrets never travel to the runner.
 * - None of the three: the live release's `.env` is carried over as it is.
 *
 * The job summary shows what changes against the live release by key: `env` keys with their new value,
 * every other key by name only. The comparison uses keyed hashes (ENV_HASH_SCRIPT): the host hashes each
 * value of the live `.env` with a random salt of this run; the runner hashes the new values the same way.
 */
import { createHash, randomBytes } from 'node:crypto'
import { UserError } from '../errors.js'

const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=(.*)$/

export interface EnvLine {
  key: string
  /** the text after the first '=' as written (what the hash covers) */
  value: string
  line: string
}

/** KEY=value lines (comments and blank lines allowed); a bad line is refused naming the input and line number only. */
export function parseEnvLines(text: string, input: string): EnvLine[] {
  const out: EnvLine[] = []
  const seen = new Set<string>()
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '')
    if (!line.trim() || line.trim().startsWith('#')) continue
    const m = LINE.exec(line)
    if (!m)
      throw new UserError(
        `Input '${input}' line ${i + 1} is not KEY=value (a letter or _ first, then letters, digits, _ . -), e.g. 'LOG_LEVEL=info'.`
      )
    if (seen.has(m[1])) throw new UserError(`Input '${input}' names ${m[1]} twice (line ${i + 1}): keep one.`)
    seen.add(m[1])
    out.push({ key: m[1], value: m[2], line: `${m[1]}=${m[2]}` })
  }
  return out
}

/** What the upload writes: the whole `.env`, or the lines merged on the host into a copy of the live one. */
export interface EnvPlan {
  /** the whole `.env` (env-file given) */
  file?: string
  /** lines merged into a copy of the live `.env` on the host (no env-file) */
  overlay?: string
  /** env keys (shown with their values) */
  plain: Map<string, string>
  /** keys shown by name only (env-secrets, env-file) */
  secret: Set<string>
  /** key → value of everything this deploy sets (for the comparison) */
  values: Map<string, string>
}

export function planEnv(p: { envFile?: string; env?: string; envSecrets?: string }): EnvPlan {
  const env = parseEnvLines(p.env ?? '', 'env')
  const secrets = parseEnvLines(p.envSecrets ?? '', 'env-secrets')
  const both = env.filter(e => secrets.some(s => s.key === e.key)).map(e => e.key)
  if (both.length)
    throw new UserError(
      `Inputs 'env' and 'env-secrets' both name ${both.join(', ')}: keep each key in one of them (env-secrets for a secret).`
    )
  const given = new Set([...env, ...secrets].map(e => e.key))
  const plain = new Map(env.map(e => [e.key, e.value]))
  const secret = new Set(secrets.map(e => e.key))
  const values = new Map<string, string>()
  const extra = [...env, ...secrets]
  if (p.envFile !== undefined) {
    // the file's own lines stay as written (comments included) unless a later input sets the key
    const kept = p.envFile
      .split('\n')
      .map(l => l.replace(/\r$/, ''))
      .filter(l => {
        const m = LINE.exec(l)
        if (!m) return true
        if (given.has(m[1])) return false
        values.set(m[1], m[2])
        secret.add(m[1])
        return true
      })
    for (const e of extra) values.set(e.key, e.value)
    while (kept.length && !kept[kept.length - 1].trim()) kept.pop()
    const text = [...kept, ...extra.map(e => e.line)].join('\n')
    return { file: text ? text + '\n' : '', plain, secret, values }
  }
  for (const e of extra) values.set(e.key, e.value)
  return extra.length
    ? { overlay: extra.map(e => e.line).join('\n') + '\n', plain, secret, values }
    : { plain, secret, values }
}

/** The keyed hash both sides compute: sha256 of salt, newline, value. */
export const keyedHash = (salt: string, value: string): string =>
  createHash('sha256').update(`${salt}\n${value}`).digest('hex')

export const newSalt = (): string => randomBytes(16).toString('hex')

/**
 * Prints `KEY <keyed hash>` for each KEY=value line of a `.env` (arg: the file; stdin: the salt).
 * Nothing but key names and hashes leaves the host.
 */
export const ENV_HASH_SCRIPT = `f=$1; IFS= read -r salt
[ -f "$f" ] || exit 0
command -v sha256sum >/dev/null 2>&1 || { echo "ERR no sha256sum on the host"; exit 3; }
grep -E '^[[:space:]]*(export[[:space:]]+)?[A-Za-z_][A-Za-z0-9_.-]*[[:space:]]*=' "$f" | tr -d '\\r' | while IFS= read -r line; do
  k=$(printf '%s' "$line" | sed -E 's/^[[:space:]]*(export[[:space:]]+)?//; s/[[:space:]]*=.*$//')
  v=\${line#*=}
  h=$(printf '%s\\n%s' "$salt" "$v" | sha256sum | cut -c1-64)
  echo "$k $h"
done
`

export interface EnvDiff {
  added: string[]
  changed: string[]
  removed: string[]
  unchanged: number
  /** env keys' new values (plain keys only) */
  shown: Record<string, string>
}

/** Compares what this deploy sets with the live `.env`'s hashes (`KEY hash` lines from ENV_HASH_SCRIPT). */
export function diffEnv(plan: EnvPlan, salt: string, liveHashes: string): EnvDiff {
  const live = new Map<string, string>()
  for (const l of liveHashes.split('\n')) {
    const [k, h] = l.trim().split(' ')
    if (k && h) live.set(k, h)
  }
  const out: EnvDiff = { added: [], changed: [], removed: [], unchanged: 0, shown: {} }
  for (const [k, v] of plan.values) {
    const was = live.get(k)
    if (was === undefined) out.added.push(k)
    else if (was !== keyedHash(salt, v)) out.changed.push(k)
    else out.unchanged++
    if (plan.plain.has(k) && was !== keyedHash(salt, v)) out.shown[k] = v
  }
  // only a whole new file can remove keys; an overlay keeps the others
  if (plan.file !== undefined) for (const k of live.keys()) if (!plan.values.has(k)) out.removed.push(k)
  return out
}

/** One line for the log and the summary: `+A ~B -C` with env values shown. */
export function envDiffLine(d: EnvDiff): string {
  const show = (k: string): string => (k in d.shown ? `${k}=${d.shown[k]}` : k)
  const parts = [
    ...d.added.map(k => `+${show(k)}`),
    ...d.changed.map(k => `~${show(k)}`),
    ...d.removed.map(k => `-${k}`)
  ]
  return parts.length ? `${parts.join(' ')} (${d.unchanged} unchanged)` : `no change (${d.unchanged} keys)`
}

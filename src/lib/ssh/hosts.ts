/** Host lines: `[user@]host[:port]`, IPv6 in brackets (`[::1]:2222`), validated before anything connects. */
import { UserError } from '../errors.js'

export interface SshTarget {
  user: string
  host: string
  port: number
}

export interface TargetDefaults {
  user: string
  port: number
}

const HOSTNAME = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})$/
const IPV6 = /^[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?$/
const USER = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/

/** A user name safe to send anywhere (no shell metacharacters, no leading `-`). */
export function checkUser(user: string, input = 'user'): string {
  if (!USER.test(user)) {
    throw new UserError(
      `Input '${input}': '${user}' is not a valid SSH user name; use letters, digits, '.', '_' or '-' (not first).`
    )
  }
  return user
}

function checkPort(raw: string | number, input = 'port'): number {
  const s = String(raw).trim()
  const n = /^\d{1,5}$/.test(s) ? Number(s) : NaN
  if (!(n >= 1 && n <= 65535))
    throw new UserError(`Input '${input}': port '${s}' is not a number from 1 to 65535.`)
  return n
}

function checkHost(host: string, input: string, line: string): string {
  const ok = host.includes(':')
    ? IPV6.test(host) && host.split(':').length >= 3
    : HOSTNAME.test(host) && !host.startsWith('-')
  if (!ok) {
    throw new UserError(
      `Input '${input}': '${line}' does not name a valid host; write [user@]host[:port], e.g. deploy@app1.example.com:22 or [2001:db8::1]:2222.`
    )
  }
  return host
}

/** Parses one `[user@]host[:port]` line; defaults fill what the line does not name. */
export function parseTarget(line: string, defaults: TargetDefaults, input = 'hosts'): SshTarget {
  const raw = line.trim()
  if (raw === '') throw new UserError(`Input '${input}' has an empty host line.`)
  let rest = raw
  let user = defaults.user
  const at = rest.lastIndexOf('@')
  if (at >= 0) {
    user = rest.slice(0, at)
    rest = rest.slice(at + 1)
  }
  let host: string
  let port = defaults.port
  if (rest.startsWith('[')) {
    const m = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
    if (!m)
      throw new UserError(
        `Input '${input}': '${raw}' has an unclosed '['; write IPv6 hosts as [2001:db8::1]:22.`
      )
    host = m[1]
    if (m[2] !== undefined) port = checkPort(m[2], input)
  } else if ((rest.match(/:/g) ?? []).length > 1) {
    host = rest // bare IPv6 address, no port
  } else {
    const i = rest.indexOf(':')
    host = i >= 0 ? rest.slice(0, i) : rest
    if (i >= 0) port = checkPort(rest.slice(i + 1), input)
  }
  return { user: checkUser(user, at >= 0 ? input : 'user'), host: checkHost(host, input, raw), port }
}

export function parseTargets(lines: string[], defaults: TargetDefaults, input = 'hosts'): SshTarget[] {
  const out = lines.map(l => parseTarget(l, defaults, input))
  const seen = new Set<string>()
  for (const t of out) {
    const k = formatTarget(t)
    if (seen.has(k)) throw new UserError(`Input '${input}' names ${k} twice; list each host once.`)
    seen.add(k)
  }
  return out
}

/** `host` for port 22, `[host]:port` otherwise: the name known_hosts uses. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** `user@host:port`, IPv6 hosts in brackets. */
export function formatTarget(t: SshTarget): string {
  const h = t.host.includes(':') ? `[${t.host}]` : t.host
  return `${t.user}@${h}:${t.port}`
}

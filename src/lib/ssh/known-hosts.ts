/**
 * Host-key verification the way OpenSSH does it, from text (never from files on the runner):
 * known_hosts lines (plain patterns with `*`, `?` and `!negation`, comma lists, `[host]:port`, hashed
 * `|1|salt|hash` entries, `@revoked` and `@cert-authority` markers) and `SHA256:…` fingerprint pins.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { UserError } from '../errors.js'
import { knownHostsName } from './hosts.js'

export interface KnownHostEntry {
  marker?: 'revoked' | 'cert-authority'
  /** plain host patterns, or undefined for a hashed entry */
  patterns?: string[]
  hashed?: { salt: Buffer; hash: Buffer }
  keyType: string
  key: Buffer
  line: number
}

export interface FingerprintPin {
  /** host pattern the pin is limited to; undefined: any host */
  host?: string
  fingerprint: string
}

export interface HostKeyPolicy {
  /** text of known_hosts lines */
  knownHosts?: string
  /** `SHA256:…` lines, optionally prefixed by a host pattern: `app1.example.com SHA256:…` */
  fingerprints?: string[]
  /** the only way to connect without either; warns loudly */
  insecureAcceptAnyHostKey?: boolean
}

export type Verdict =
  | { ok: true; how: string }
  | {
      ok: false
      reason: 'revoked' | 'mismatch' | 'unknown'
      message: string
      fingerprint: string
      keyType: string
    }

/** `SHA256:<base64 without padding>` of a raw key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/** The algorithm name at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
function blobKeyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const n = blob.readUInt32BE(0)
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown'
}

const KEY_TYPES =
  /^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com|ssh-ed448)$/

/** Parses known_hosts text. Comments, blank and unreadable lines are skipped like OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = []
  text.split(/\r?\n/).forEach((rawLine, i) => {
    const line = rawLine.trim()
    if (line === '' || line.startsWith('#')) return
    const f = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (f[0].startsWith('@')) {
      const m = f.shift()!.toLowerCase()
      if (m === '@revoked') marker = 'revoked'
      else if (m === '@cert-authority') marker = 'cert-authority'
      else return
    }
    if (f.length < 3) return
    const [hosts, keyType, b64] = f
    if (!KEY_TYPES.test(keyType) || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return
    const key = Buffer.from(b64, 'base64')
    if (blobKeyType(key) !== keyType) return
    const entry: KnownHostEntry = { marker, keyType, key, line: i + 1 }
    if (hosts.startsWith('|1|')) {
      const [, , salt, hash] = hosts.split('|')
      if (!salt || !hash) return
      entry.hashed = { salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') }
    } else {
      entry.patterns = hosts.split(',').filter(Boolean)
    }
    out.push(entry)
  })
  return out
}

function globMatch(pattern: string, s: string): boolean {
  const re =
    '^' +
    pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.') +
    '$'
  return new RegExp(re, 'i').test(s)
}

/** OpenSSH's match_hostname: any positive pattern matches and no negated pattern does. */
function matchPatterns(patterns: string[], name: string): boolean {
  let matched = false
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false
    } else if (globMatch(p, name)) matched = true
  }
  return matched
}

/** Does this entry name the host (`host` for port 22, `[host]:port` otherwise)? */
export function entryMatches(e: KnownHostEntry, host: string, port: number): boolean {
  const name = knownHostsName(host.toLowerCase(), port)
  if (e.hashed) {
    const h = createHmac('sha1', e.hashed.salt).update(name).digest()
    return h.length === e.hashed.hash.length && timingSafeEqual(h, e.hashed.hash)
  }
  return matchPatterns(e.patterns ?? [], name)
}

/** `SHA256:…` lines, each optionally preceded by a host pattern. */
function parseFingerprintPins(lines: string[], input = 'host-fingerprint'): FingerprintPin[] {
  return lines.map(raw => {
    const f = raw.trim().split(/\s+/)
    const fp = f[f.length - 1]
    const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(fp)
    if (!m || f.length > 2) {
      throw new UserError(
        `Input '${input}': '${raw.trim()}' is not a SHA256 fingerprint; write SHA256:… as 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub' prints it on the host (optionally preceded by the host name).`
      )
    }
    return { host: f.length === 2 ? f[0] : undefined, fingerprint: `SHA256:${m[1]}` }
  })
}

function pinApplies(pin: FingerprintPin, host: string, port: number): boolean {
  if (pin.host === undefined) return true
  const names = [knownHostsName(host, port), host, `${host}:${port}`]
  return names.some(n => matchPatterns(pin.host!.split(','), n))
}

/** A parsed policy, ready to judge host keys. */
export class HostKeyChecker {
  readonly entries: KnownHostEntry[]
  readonly pins: FingerprintPin[]
  readonly insecure: boolean

  constructor(policy: HostKeyPolicy) {
    this.entries = policy.knownHosts ? parseKnownHosts(policy.knownHosts) : []
    this.pins = parseFingerprintPins(policy.fingerprints ?? [])
    this.insecure = policy.insecureAcceptAnyHostKey === true
    if (policy.knownHosts && policy.knownHosts.trim() !== '' && this.entries.length === 0) {
      throw new UserError(
        "Input 'known-hosts' holds no readable known_hosts line; each line is 'host key-type base64-key' as 'ssh-keyscan -p PORT HOST' prints it."
      )
    }
  }

  /** Key types known for this host, to be preferred in the key exchange (like OpenSSH does). */
  knownKeyTypes(host: string, port: number): string[] {
    const types = this.entries.filter(e => !e.marker && entryMatches(e, host, port)).map(e => e.keyType)
    return [...new Set(types)]
  }

  /** Throws the refusal before any connection when no host key is pinned for this host. */
  requirePolicy(host: string, port: number): void {
    if (this.insecure) return
    const hasEntry = this.entries.some(e => !e.marker && entryMatches(e, host, port))
    const hasPin = this.pins.some(p => pinApplies(p, host, port))
    if (hasEntry || hasPin) return
    const scan = `ssh-keyscan${port === 22 ? '' : ` -p ${port}`} ${host}`
    if (this.entries.some(e => e.marker === 'cert-authority' && entryMatches(e, host, port))) {
      throw new UserError(
        `'known-hosts' vouches for ${knownHostsName(host, port)} only through @cert-authority, and host certificates are not supported; add the host's own key line that '${scan}' prints.`
      )
    }
    if (this.entries.length || this.pins.length) {
      throw new UserError(
        `No host key for ${knownHostsName(host, port)} in 'known-hosts' or 'host-fingerprint'; add the line that '${scan}' prints (from a trusted network) to the known-hosts secret.`
      )
    }
    throw new UserError(
      `Refusing to connect to ${knownHostsName(host, port)} without a pinned host key: put the output of '${scan}' (run from a trusted network) in a secret and pass it as 'known-hosts', or pin 'host-fingerprint: SHA256:…'; only 'insecure-accept-any-host-key: true' skips this check.`
    )
  }

  verify(host: string, port: number, key: Buffer): Verdict {
    const fp = fingerprint(key)
    const keyType = blobKeyType(key)
    const name = knownHostsName(host, port)
    const fail = (reason: 'revoked' | 'mismatch' | 'unknown', message: string): Verdict => ({
      ok: false,
      reason,
      message,
      fingerprint: fp,
      keyType
    })
    const same = (e: KnownHostEntry) => e.key.equals(key)
    const revoked = this.entries.find(e => e.marker === 'revoked' && same(e))
    if (revoked) {
      return fail(
        'revoked',
        `The host key of ${name} (${keyType} ${fp}) is marked @revoked in 'known-hosts' line ${revoked.line}; the host must get a new key, then update 'known-hosts'.`
      )
    }
    const matching = this.entries.filter(e => !e.marker && entryMatches(e, host, port))
    const hit = matching.find(same)
    if (hit) return { ok: true, how: `known-hosts line ${hit.line}` }
    const pins = this.pins.filter(p => pinApplies(p, host, port))
    if (pins.some(p => p.fingerprint === fp)) return { ok: true, how: 'host-fingerprint' }
    if (matching.length || pins.length) {
      const expected = [
        ...matching.map(e => `${e.keyType} ${fingerprint(e.key)}`),
        ...pins.map(p => p.fingerprint)
      ].join(', ')
      return fail(
        'mismatch',
        `HOST KEY MISMATCH for ${name}: it presented ${keyType} ${fp} but 'known-hosts'/'host-fingerprint' expect ${expected}. Someone may be intercepting the connection, or the host was rebuilt; verify the key on the host ('ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub') before updating the secret.`
      )
    }
    // only hosts with no entry at all are let through; a changed key is refused even then
    if (this.insecure) return { ok: true, how: 'insecure-accept-any-host-key' }
    return fail(
      'unknown',
      `The host key of ${name} (${keyType} ${fp}) is not in 'known-hosts' or 'host-fingerprint'; add it after checking it on the host.`
    )
  }

  /** The loud warning printed when host keys are not checked, or undefined. */
  warning(): string | undefined {
    if (!this.insecure) return undefined
    return "insecure-accept-any-host-key is true: host keys are NOT verified, so anyone who can intercept the connection can impersonate the host and receive your deploy (and its secrets). Set 'known-hosts' (output of ssh-keyscan) or 'host-fingerprint' and remove this option."
  }
}

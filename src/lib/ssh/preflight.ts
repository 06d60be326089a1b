/**
 * What is refused before any connection (an unreadable private key, no credentials, a host without a
 * pinned key), and the mapping of connection failures to UserErrors that say the fix.
 */
import ssh2 from 'ssh2'
import { UserError, errorMessage } from '../errors.js'
import { formatTarget, type SshTarget } from './hosts.js'
import { HostKeyChecker, type Verdict } from './known-hosts.js'
import type { SshOptions } from './options.js'

/** Normalises pasted key text: CRLF, literal "\n" from one-line secrets, missing final newline. */
export function normalizeKey(text: string): string {
  let t = text.replace(/\r\n?/g, '\n').trim()
  if (!t.includes('\n') && t.includes('\\n')) t = t.replace(/\\n/g, '\n')
  return t + '\n'
}

/** Reads the private key (decrypting it with the passphrase) before any connection; UserError if unusable. */
export function checkPrivateKey(privateKey: string, passphrase?: string): void {
  const parsed = ssh2.utils.parseKey(normalizeKey(privateKey), passphrase || undefined)
  if (!(parsed instanceof Error)) return
  const m = parsed.message
  if (/no passphrase/i.test(m))
    throw new UserError("Input 'ssh-key' is encrypted: set 'ssh-key-passphrase' to its passphrase.")
  if (/passphrase|decrypt|bad key/i.test(m) && passphrase) {
    throw new UserError(
      "Input 'ssh-key' could not be decrypted with 'ssh-key-passphrase': check the passphrase secret."
    )
  }
  throw new UserError(
    `Input 'ssh-key' is not a private key ssh2 can read (${m.replace(/[\r\n]+/g, ' ')}); paste the whole key, BEGIN and END lines included (OpenSSH or PEM format).`
  )
}

/** Refuses before connecting: unreadable key, no credentials, or a host without a pinned key. Returns warnings. */
export function preflight(
  opts: SshOptions,
  targets: SshTarget[]
): { checker: HostKeyChecker; warnings: string[] } {
  if (!opts.privateKey && !opts.password) {
    throw new UserError("No SSH credentials: set 'ssh-key' (a private key in a secret) or 'ssh-password'.")
  }
  if (opts.privateKey) checkPrivateKey(opts.privateKey, opts.passphrase)
  const checker = opts.checker ?? new HostKeyChecker(opts)
  for (const t of opts.proxyJump ? [opts.proxyJump, ...targets] : targets)
    checker.requirePolicy(t.host, t.port)
  const w = checker.warning()
  return { checker, warnings: w ? [w] : [] }
}

interface Level {
  level?: string
  code?: string
}

/**
 * The UserError for a connection that did not come up: a refused host key (the checker's verdict says
 * why), a refused login, or the network error, each with its fix. `via` is the bastion, when hopping.
 */
export function mapConnectError(
  e: unknown,
  t: SshTarget,
  verdict: Verdict | undefined,
  opts: SshOptions,
  via?: SshTarget
): UserError {
  if (verdict && verdict.ok === false) return new UserError(verdict.message)
  const err = e as Error & Level
  const where = `${t.host}:${t.port}${via ? ` (through ${formatTarget(via)})` : ''}`
  const msg = errorMessage(e)
  const creds = [opts.privateKey ? 'the key in ssh-key' : '', opts.password ? 'ssh-password' : '']
    .filter(Boolean)
    .join(' or ')
  if (err.level === 'client-authentication' || /authentication methods failed/i.test(msg)) {
    const fix = opts.privateKey
      ? `add the public key of 'ssh-key' to ~${t.user}/.ssh/authorized_keys on ${t.host}, or set 'user' to the account that has it`
      : `check 'ssh-password' and that ${t.host} allows password login for ${t.user}`
    return new UserError(`SSH login as ${t.user}@${where} was refused for ${creds}: ${fix}.`)
  }
  if (err.code === 'ECONNREFUSED') {
    return new UserError(
      `Nothing listens for SSH on ${where} (connection refused): check the host and 'port', and that sshd runs there.`
    )
  }
  if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') {
    return new UserError(
      `The host name ${t.host} does not resolve (${err.code}): check 'hosts' and the runner's DNS.`
    )
  }
  if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') {
    return new UserError(
      `${where} is unreachable from the runner (${err.code}): check the address, routes, or use 'proxy-jump'.`
    )
  }
  if (err.level === 'client-timeout' || err.code === 'ETIMEDOUT' || /timed out/i.test(msg)) {
    const s = Math.round((opts.readyTimeoutMs ?? 20_000) / 1000)
    return new UserError(
      `No SSH handshake with ${where} within ${s} s: a firewall may drop the port, or the host is down; check that the runner can reach port ${t.port}.`
    )
  }
  if (err.code === 'ECONNRESET' || /closed|reset/i.test(msg)) {
    return new UserError(
      `${where} closed the SSH connection during the handshake (${msg}): check sshd's log there (MaxStartups, AllowUsers, fail2ban).`
    )
  }
  return new UserError(`SSH connection to ${where} failed: ${msg}`)
}

/** The SSH transport's options, shared by the preflight, the connections and the bastion hop. */
import type { SshTarget } from './hosts.js'
import type { HostKeyChecker, HostKeyPolicy } from './known-hosts.js'

export interface SshAuth {
  /** private key text (OpenSSH or PEM), kept in memory only */
  privateKey?: string
  passphrase?: string
  password?: string
}

/** What every host of a deploy shares: credentials, host-key policy, bastion, timeouts. */
export interface SshOptions extends SshAuth, HostKeyPolicy {
  /** bastion to hop through (`proxy-jump`); authenticated with the same credentials */
  proxyJump?: SshTarget
  /** TCP connect + SSH handshake limit (default 20 s) */
  readyTimeoutMs?: number
  /** SSH keepalive interval (default 15 s; 0 disables); the connection is dropped after 3 unanswered */
  keepaliveIntervalMs?: number
  /** concurrent command channels per connection (default 7; OpenSSH allows 10 sessions per connection,
   * one is kept for SFTP and one for timeout kills) */
  maxChannels?: number
  /** how files travel: 'auto' (SFTP, or a shell command when the host has no SFTP) or always 'exec' */
  fileTransfer?: 'auto' | 'exec'
  /**
   * after a command has exited, how long to wait for its output to end (default 3 s): a process it left
   * in the background holding stdout/stderr would otherwise keep the step waiting until it ends
   */
  exitGraceMs?: number
  /** TCP_NODELAY (default true; false only to measure what it saves, see bench/ssh-transport.mjs) */
  noDelay?: boolean
  /** a pre-built checker (parsed once for many hosts); otherwise built from the policy fields */
  checker?: HostKeyChecker
}

export interface ConnectOptions extends SshOptions {
  target: SshTarget
}

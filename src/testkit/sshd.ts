/**
 * A real OpenSSH server for tests: /usr/sbin/sshd -D -e on a free loopback port with its own host key, a
 * temporary config, key-only auth by default. Several can run at once (fleet tests use several ports).
 *
 * The client key it authorizes is generated in memory (ssh2's keygen); only the host key and the
 * authorized_keys file live in the fixture's temp dir, which stop() removes.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { connectSsh, type SshRemote } from '../lib/ssh/client.js'
import { freePort, startProcess, waitForPort, sleep } from './net.js'

export const SSHD = '/usr/sbin/sshd'
/** the system user the fixture creates (idempotently) when a test asks for password auth */
export const PASSWORD_USER = 'shipline-pw'

export interface SshdOptions {
  /** extra authorized_keys lines (the fixture's own clientKey is always authorized unless authorizeClientKey is false) */
  authorizedKeys?: string[]
  authorizeClientKey?: boolean
  /** enables password auth for PASSWORD_USER with this password (the user is created when missing) */
  password?: string
  /** host key type (default ed25519) */
  hostKeyType?: 'ed25519' | 'rsa' | 'ecdsa'
  /** more host keys (the server then offers several types) */
  extraHostKeyTypes?: ('ed25519' | 'rsa' | 'ecdsa')[]
  /** also listen on [::1] (same port) */
  ipv6?: boolean
  /** extra sshd_config lines */
  extraConfig?: string[]
}

export interface KeyPair {
  privateKey: string
  publicKey: string
}

export interface Sshd {
  host: '127.0.0.1'
  port: number
  user: 'root'
  /** set when `password` was given: a plain user (shell /bin/sh) who may log in with the password or clientKey */
  passwordUser?: string
  /** the host key as an OpenSSH public key line (`ssh-ed25519 AAAA… comment`) */
  hostKeyPublic: string
  /** `SHA256:…` as `ssh-keygen -lf` prints it */
  hostFingerprint: string
  /** `[127.0.0.1]:port ssh-ed25519 AAAA…` */
  knownHostsLine: string
  /** every host key: the first is hostKeyPublic, then extraHostKeyTypes */
  hostKeys: { type: string; line: string; fingerprint: string }[]
  clientKey: KeyPair
  dir: string
  /** pid of the listening sshd (its process group holds the per-connection sshd processes too) */
  pid: number
  /** SIGSTOP / SIGCONT sshd and everything it started: a host that stops answering */
  freeze: () => void
  thaw: () => void
  /** SIGKILL the per-connection sshd processes (not what they started): a dropped connection */
  dropConnections: () => void
  /** sshd's log so far (LogLevel VERBOSE) */
  log: () => string
  /** lines of the log that match the pattern */
  logLines: (re: RegExp) => string[]
  stop: () => Promise<void>
}

/** `SHA256:<base64 without padding>` of an OpenSSH public key line or raw key blob. */
export function fingerprintOf(key: string | Buffer): string {
  const blob = typeof key === 'string' ? Buffer.from(key.trim().split(/\s+/)[1], 'base64') : key
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/**
 * A fresh ed25519 key pair made in memory; with a passphrase the private key is encrypted (aes256-ctr).
 * ssh2's generator drops a leading zero byte of the public key (about 1 key in 256 comes out malformed),
 * so malformed ones are thrown away (mscdex/ssh2#1390, #1513).
 */
export function generateClientKey(passphrase?: string, comment = 'shipline-test'): KeyPair {
  const opts = passphrase ? { comment, passphrase, cipher: 'aes256-ctr', rounds: 4 } : { comment }
  for (;;) {
    const kp = ssh2.utils.generateKeyPairSync('ed25519', opts as { comment: string })
    const blob = Buffer.from(kp.public.split(' ')[1], 'base64')
    const parsed = ssh2.utils.parseKey(kp.private, passphrase)
    if (blob.length === 51 && !(parsed instanceof Error))
      return { privateKey: kp.private, publicKey: kp.public }
  }
}

function ensurePasswordUser(password: string): void {
  try {
    execFileSync('id', ['-u', PASSWORD_USER], { stdio: 'ignore' })
  } catch {
    try {
      execFileSync('useradd', ['-M', '-d', '/tmp', '-s', '/bin/sh', PASSWORD_USER], { stdio: 'pipe' })
    } catch (e) {
      // another fixture may have created it at the same moment
      execFileSync('id', ['-u', PASSWORD_USER], { stdio: 'ignore' })
      void e
    }
  }
  // over stdin, never argv
  execFileSync('chpasswd', [], { input: `${PASSWORD_USER}:${password}\n`, stdio: ['pipe', 'ignore', 'pipe'] })
}

export async function startSshd(opts: SshdOptions = {}): Promise<Sshd> {
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const dir = mkdtempSync(join(tmpdir(), 'shipline-sshd-'))
  const types = [opts.hostKeyType ?? 'ed25519', ...(opts.extraHostKeyTypes ?? [])]
  const hostKeys = types.map(type => {
    const file = join(dir, `host_${type}`)
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'shipline-test-host', '-f', file], {
      stdio: 'pipe'
    })
    const line = readFileSync(file + '.pub', 'utf8').trim()
    return { file, type: line.split(/\s+/)[0], line, fingerprint: fingerprintOf(line) }
  })
  const pub = hostKeys[0].line
  const [keyType, keyB64] = pub.split(/\s+/)
  const clientKey = generateClientKey()
  const authorized = [
    ...(opts.authorizeClientKey === false ? [] : [clientKey.publicKey]),
    ...(opts.authorizedKeys ?? [])
  ]
  // readable by the plain user too (sshd reads it with the user's rights); public keys only
  chmodSync(dir, 0o755)
  writeFileSync(join(dir, 'authorized_keys'), authorized.map(l => l.trim() + '\n').join(''), { mode: 0o644 })
  if (opts.password) ensurePasswordUser(opts.password)

  let lastErr = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const config = [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      ...(opts.ipv6 ? ['ListenAddress ::1'] : []),
      ...hostKeys.map(k => `HostKey ${k.file}`),
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      `PasswordAuthentication ${opts.password ? 'yes' : 'no'}`,
      'KbdInteractiveAuthentication no',
      'PermitEmptyPasswords no',
      'StrictModes no',
      'UsePAM no',
      'LogLevel VERBOSE',
      'AllowTcpForwarding yes',
      'PrintMotd no',
      'Subsystem sftp internal-sftp',
      ...(opts.extraConfig ?? [])
    ]
    const cfgPath = join(dir, 'sshd_config')
    writeFileSync(cfgPath, config.join('\n') + '\n')
    const proc = startProcess(SSHD, ['-D', '-e', '-f', cfgPath])
    let exited = false
    proc.child.once('exit', () => (exited = true))
    const deadline = Date.now() + 15_000
    let listening = false
    while (!exited && !listening && Date.now() < deadline) {
      // sshd logs this once its socket is bound (also guards against someone else on the port)
      if (/Server listening on 127\.0\.0\.1 port/.test(proc.output())) {
        await waitForPort(port, '127.0.0.1', 5000)
        listening = true
      } else await sleep(30)
    }
    if (!listening) {
      lastErr = exited ? `sshd exited: ${proc.output()}` : `sshd did not listen: ${proc.output()}`
      await proc.stop()
      continue // most likely the port was taken between freePort and bind: try another one
    }
    const log = proc.output
    return {
      host: '127.0.0.1',
      port,
      user: 'root',
      passwordUser: opts.password ? PASSWORD_USER : undefined,
      hostKeyPublic: pub,
      hostFingerprint: fingerprintOf(pub),
      knownHostsLine: `[127.0.0.1]:${port} ${keyType} ${keyB64}`,
      hostKeys: hostKeys.map(({ type, line, fingerprint }) => ({ type, line, fingerprint })),
      clientKey,
      dir,
      pid: proc.child.pid!,
      freeze: () => signalAll([proc.child.pid!, ...descendants(proc.child.pid!)], 'SIGSTOP'),
      thaw: () => signalAll([proc.child.pid!, ...descendants(proc.child.pid!)], 'SIGCONT'),
      dropConnections: () => signalAll(children(proc.child.pid!), 'SIGKILL'),
      log,
      logLines: (re: RegExp) =>
        log()
          .split('\n')
          .filter(l => re.test(l)),
      stop: async () => {
        // each connection's sshd runs in its own session (setsid), so the listener's process group does
        // not hold them: kill the whole tree, sessions included
        const tree = descendants(proc.child.pid!)
        signalAll(tree, 'SIGKILL')
        signalAll([proc.child.pid!], 'SIGCONT')
        await proc.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  rmSync(dir, { recursive: true, force: true })
  throw new Error(`sshd did not start: ${lastErr}`)
}

function parentsMap(): Map<number, number[]> {
  const kids = new Map<number, number[]>()
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      // pid (comm) state ppid ...; comm may hold spaces and parentheses
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)])
    } catch {
      /* exited */
    }
  }
  return kids
}

function children(pid: number): number[] {
  return parentsMap().get(pid) ?? []
}

function descendants(pid: number): number[] {
  const kids = parentsMap()
  const out: number[] = []
  const walk = (p: number) => {
    for (const c of kids.get(p) ?? []) {
      out.push(c)
      walk(c)
    }
  }
  walk(pid)
  return out
}

function signalAll(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig)
    } catch {
      /* gone */
    }
  }
}

/** A random password for the password-auth test (never put on a command line). */
export function randomPassword(): string {
  return randomBytes(18).toString('base64url')
}

/**
 * deploy()'s `hosts` and `connect` for the one host an Sshd is: root over its key, its host key pinned.
 * `via`: connect through that address instead (a TcpCut in front of the sshd), the same host key pinned there.
 */
export function sshFleet(
  sshd: Sshd,
  via?: { host: string; port: number }
): { hosts: string[]; connect: () => Promise<SshRemote> } {
  const at = via ?? { host: '127.0.0.1', port: sshd.port }
  return {
    hosts: [`root@127.0.0.1:${sshd.port}`],
    connect: () =>
      connectSsh({
        target: { ...at, user: 'root' },
        privateKey: sshd.clientKey.privateKey,
        knownHosts: via
          ? sshd.knownHostsLine.replace(`[${sshd.host}]:${sshd.port}`, `[${via.host}]:${via.port}`)
          : sshd.knownHostsLine
      })
  }
}

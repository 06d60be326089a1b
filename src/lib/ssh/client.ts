/**
 * The SSH transport: an in-process ssh2 client (no ssh binary, no key file written anywhere), one
 * connection per host reused for every step, host keys verified before authentication, optional
 * proxy-jump through a bastion.
 *
 * Remote commands: every argv element is quoted for the remote POSIX shell (see remote.ts); secrets go
 * over stdin or as file contents, never in a command line (sshd runs the line as `$SHELL -c LINE`, so the
 * line is visible in the host's process list). Each command is wrapped so that it first reports its
 * process group (sshd starts each session in a new session/process group); a timeout then kills that whole
 * group over the same connection, so nothing keeps running on the host after a timeout.
 *
 * This file is the facade: the connection (`SshRemote`, `connectSsh`, `connectHosts`) and its command
 * channels. The checks before connecting and the error messages are in preflight.ts, files (SFTP, or sh)
 * in sftp.ts, the bastion hop in jump.ts, the options in options.ts.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { constants as osConstants } from 'node:os'
import { StringDecoder } from 'node:string_decoder'
import type { Client as ClientType, ClientChannel, ConnectConfig } from 'ssh2'
import ssh2 from 'ssh2'
import { UserError, errorMessage } from '../errors.js'
import { formatTarget, type SshTarget } from './hosts.js'
import { Jump } from './jump.js'
import type { HostKeyChecker, Verdict } from './known-hosts.js'
import type { ConnectOptions, SshOptions } from './options.js'
import { mapConnectError, normalizeKey, preflight } from './preflight.js'
import { commandLine, type ExecOptions, type Remote, type RemoteResult, type Tunnel } from './remote.js'
import { RemoteFiles, type RawResult } from './sftp.js'

export type { ConnectOptions, SshAuth, SshOptions } from './options.js'
export { checkPrivateKey, normalizeKey, preflight } from './preflight.js'
export { commandLine } from './remote.js'

/** A timed-out remote command: it was killed on the host (its whole process group). */
export class RemoteTimeoutError extends UserError {
  readonly stdout: string
  readonly stderr: string
  constructor(message: string, stdout: string, stderr: string) {
    super(message, `stdout (tail):\n${stdout.slice(-4000)}\nstderr (tail):\n${stderr.slice(-4000)}`)
    this.stdout = stdout
    this.stderr = stderr
  }
}

/** ssh2's host-key algorithms, in its default order */
const HOSTKEY_DEFAULT = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa'
]
const HOSTKEY_ALGOS: Record<string, string[]> = { 'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] }

/** Host-key algorithms with the types known for this host first, as OpenSSH orders them. */
function hostKeyAlgorithms(knownTypes: string[]): string[] | undefined {
  const first = knownTypes.flatMap(k => HOSTKEY_ALGOS[k] ?? [k]).filter(a => HOSTKEY_DEFAULT.includes(a))
  if (first.length === 0) return undefined
  return [...new Set([...first, ...HOSTKEY_DEFAULT])]
}

/** Opens one authenticated ssh2 connection (over `sock` when hopping through a bastion). */
function openClient(
  t: SshTarget,
  opts: SshOptions,
  checker: HostKeyChecker,
  sock?: ConnectConfig['sock'],
  via?: SshTarget
): Promise<ClientType> {
  const client = new ssh2.Client()
  let verdict: Verdict | undefined
  const hostKeyAlgos = hostKeyAlgorithms(checker.knownKeyTypes(t.host, t.port))
  const methods: ('publickey' | 'password' | 'keyboard-interactive')[] = []
  if (opts.privateKey) methods.push('publickey')
  if (opts.password) methods.push('password', 'keyboard-interactive')
  const config: ConnectConfig = {
    host: t.host,
    port: t.port,
    username: t.user,
    privateKey: opts.privateKey ? normalizeKey(opts.privateKey) : undefined,
    passphrase: opts.passphrase || undefined,
    password: opts.password || undefined,
    tryKeyboard: Boolean(opts.password),
    authHandler: methods,
    sock,
    readyTimeout: opts.readyTimeoutMs ?? 20_000,
    keepaliveInterval: opts.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: 3,
    ident: 'shipline',
    hostVerifier: (key: Buffer) => {
      verdict = checker.verify(t.host, t.port, key)
      return verdict.ok
    }
  }
  // an exact list: ssh2's `prepend` skips algorithms already in its defaults, so it cannot reorder
  if (hostKeyAlgos) config.algorithms = { serverHostKey: hostKeyAlgos as never }
  if (opts.password) {
    const pw = opts.password
    client.on('keyboard-interactive', (_n, _i, _l, prompts, finish) => {
      // answer only a single password prompt, nothing else (no OTP guessing)
      finish(prompts.length === 1 && /password/i.test(prompts[0].prompt) ? [pw] : prompts.map(() => ''))
    })
  }
  return new Promise((resolve, reject) => {
    let settled = false
    client.once('ready', () => {
      settled = true
      resolve(client)
    })
    client.on('error', e => {
      if (settled) return
      settled = true
      client.end()
      reject(mapConnectError(e, t, verdict, opts, via))
    })
    client.once('close', () => {
      if (settled) return
      settled = true
      reject(mapConnectError(new Error('connection closed'), t, verdict, opts, via))
    })
    try {
      client.connect(config)
      // small request/response packets (SFTP, exec requests): without this, Nagle's algorithm and
      // delayed ACKs add ~40-100 ms to each round trip (measured: 64 KiB writeFile 90 ms → 3 ms)
      if (opts.noDelay !== false) client.setNoDelay(true)
    } catch (e) {
      settled = true
      reject(mapConnectError(e, t, verdict, opts, via))
    }
  })
}

/** Limits concurrent channels on one connection; `priority` takers (timeout kills) skip the queue. */
class Slots {
  private used = 0
  private waiting: (() => void)[] = []
  constructor(private max: number) {}
  async take(priority = false): Promise<() => void> {
    while (!priority && this.used >= this.max) await new Promise<void>(r => this.waiting.push(r))
    this.used++
    let done = false
    return () => {
      if (done) return
      done = true
      this.used--
      this.waiting.shift()?.()
    }
  }
  get inUse(): number {
    return this.used
  }

  /**
   * The host refused a session while `used` of ours were open: its limit is about there, so use no more
   * at once from now on. With none of ours open it was a passing refusal (OpenSSH frees a closed session
   * a loop later): keep the limit.
   */
  shrink(): void {
    if (this.used > 0) this.max = Math.min(this.max, this.used)
  }
}

const signalCode = (name: string | undefined): number => {
  const n = name ? (osConstants.signals as Record<string, number>)[`SIG${name}`] : undefined
  return 128 + (n ?? 0)
}

const emit = (s: string, f: (s: string) => void): void => {
  if (s) f(s)
}
const flush = (d: StringDecoder, f: (s: string) => void): void => emit(d.end(), f)

/**
 * Each wrapped command first writes a marker line with its process group id to stderr. A marker (not
 * just "the first line") because the host's shell rc files may print to stderr before it; whatever
 * comes before the marker is passed on as the command's stderr.
 */
const PGID_MARK = `@@shipline-pgid-${randomBytes(4).toString('hex')}:`
const PGID_PREFIX = `echo ${PGID_MARK}$$ >&2; `

export class SshRemote implements Remote {
  readonly label: string
  readonly target: SshTarget
  private closed = false
  private lostReason = ''
  private readonly slots: Slots
  private readonly files: RemoteFiles

  constructor(
    private readonly client: ClientType,
    target: SshTarget,
    private readonly onClose: () => Promise<void>,
    private readonly opts: Pick<SshOptions, 'maxChannels' | 'fileTransfer' | 'exitGraceMs'> = {}
  ) {
    this.target = target
    this.label = formatTarget(target)
    this.slots = new Slots(opts.maxChannels ?? 7)
    this.files = new RemoteFiles(client, this, () => this.closed, opts.fileTransfer)
    client.on('error', e => (this.lostReason ||= errorMessage(e)))
    client.on('close', () => {
      this.closed = true
      this.lostReason ||= 'connection closed'
    })
  }

  isOpen(): boolean {
    return !this.closed && !this.lostReason
  }

  private closedError(): UserError {
    const why = this.lostReason || 'connection closed'
    const hint = /keepalive/i.test(why) ? ': the host stopped answering (network or host down)' : ''
    return new UserError(
      `The SSH connection to ${this.label} is closed (${why})${hint}; the step cannot continue.`
    )
  }

  /**
   * Opens an exec channel for a raw shell line. `attach` runs synchronously in ssh2's callback: a fast
   * command's output, exit status and close can arrive in the same read as the channel's confirmation,
   * and ssh2 emits 'exit' at once, so listeners attached a microtask later would miss it.
   */
  private async channel(
    line: string,
    priority: boolean,
    attach: (ch: ClientChannel, release: () => void) => void
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const release = await this.slots.take(priority)
      const err = await new Promise<Error | undefined>(resolve => {
        if (this.closed) return resolve(new Error('closed'))
        this.client.exec(line, (e, ch) => {
          if (e) return resolve(e)
          attach(ch, release)
          resolve(undefined)
        })
      })
      if (!err) return
      release()
      // let a dying connection report why, then say so rather than the channel's own complaint
      await new Promise(r => setImmediate(r))
      if (this.closed || this.lostReason) throw this.closedError()
      // OpenSSH refuses a session beyond MaxSessions (10 by default, fewer on some hosts), and frees a
      // closed one only on its next loop: use fewer at once and retry after a short pause
      if (attempt >= 8) {
        throw new UserError(
          `${this.label} refuses new SSH sessions (${err.message}); check MaxSessions in its sshd_config (at least 2 needed).`
        )
      }
      this.slots.shrink()
      // refused with none of our commands open: the idle SFTP session holds the host's only slot
      if (attempt >= 2 && this.slots.inUse === 0) this.files.dropIdleSftp()
      await new Promise(r => setTimeout(r, Math.min(25 * 2 ** attempt, 1000)))
    }
  }

  /** Runs a raw shell line (already quoted) and collects bytes. The engine under exec/readFile/writeFile. */
  async run(line: string, opts: ExecOptions = {}, what = line.slice(0, 60)): Promise<RawResult> {
    let settle!: { resolve: (r: RawResult) => void; reject: (e: unknown) => void }
    const result = new Promise<RawResult>((resolve, reject) => (settle = { resolve, reject }))
    await this.channel(PGID_PREFIX + line, false, (ch, release) =>
      this.collect(ch, release, opts, what, settle)
    )
    return result
  }

  /** Wires one command's channel: output, the process-group header, exit status, timeout, stdin. */
  private collect(
    ch: ClientChannel,
    release: () => void,
    opts: ExecOptions,
    what: string,
    settle: { resolve: (r: RawResult) => void; reject: (e: unknown) => void }
  ): void {
    const out: Buffer[] = []
    const err: Buffer[] = []
    const outDec = new StringDecoder('utf8')
    const errDec = new StringDecoder('utf8')
    let code: number | undefined
    let pgid: number | undefined
    let header = Buffer.alloc(0)
    let timedOut = false
    let killing: Promise<void> | undefined
    const kill = () => {
      if (!timedOut || pgid === undefined || killing) return
      killing = this.killGroup(pgid).catch(() => undefined)
    }
    let hard: NodeJS.Timeout | undefined
    const timer =
      opts.timeoutMs !== undefined && opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true
            kill()
            // the kill waits 3 s for TERM before KILL; if the channel still has not closed by then
            // (no process group reported, a wedged host), drop the channel so the step can fail
            hard = setTimeout(() => ch.close(), 8000)
          }, opts.timeoutMs)
        : undefined
    const onErr = (d: Buffer) => {
      err.push(d)
      if (opts.onStderr) emit(errDec.write(d), opts.onStderr)
    }
    ch.on('data', (d: Buffer) => {
      out.push(d)
      if (opts.onStdout) emit(outDec.write(d), opts.onStdout)
    })
    ch.stderr.on('data', (d: Buffer) => {
      if (pgid !== undefined) return onErr(d)
      header = Buffer.concat([header, d])
      const at = header.indexOf(PGID_MARK)
      const nl = at < 0 ? -1 : header.indexOf(10, at)
      if (nl < 0) return
      pgid =
        Number(
          header
            .subarray(at + PGID_MARK.length, nl)
            .toString('latin1')
            .trim()
        ) || 0
      kill()
      if (at > 0) onErr(header.subarray(0, at))
      if (header.length > nl + 1) onErr(header.subarray(nl + 1))
      header = Buffer.alloc(0)
    })
    let grace: NodeJS.Timeout | undefined
    ch.on('exit', (c: number | null, signal?: string) => {
      code = c ?? signalCode(signal)
      // the command is done; what still holds its output open was put in the background by it
      grace = setTimeout(() => ch.close(), this.opts.exitGraceMs ?? 3000)
    })
    ch.on('close', () => {
      if (timer) clearTimeout(timer)
      if (hard) clearTimeout(hard)
      if (grace) clearTimeout(grace)
      release()
      // no marker came (the login shell is not POSIX, or failed first): its stderr is still stderr
      if (pgid === undefined && header.length) onErr(header)
      if (opts.onStdout) flush(outDec, opts.onStdout)
      if (opts.onStderr) flush(errDec, opts.onStderr)
      void (killing ?? Promise.resolve()).then(() => {
        const stdout = Buffer.concat(out)
        const stderr = Buffer.concat(err)
        if (timedOut) {
          const secs = (opts.timeoutMs ?? 0) / 1000
          settle.reject(
            new RemoteTimeoutError(
              `'${what}' on ${this.label} did not finish within ${secs % 1 ? secs.toFixed(1) : secs} s and was stopped (its whole process group was killed).`,
              stdout.toString('utf8'),
              stderr.toString('utf8')
            )
          )
        } else if (code === undefined) {
          settle.reject(
            new UserError(
              `The SSH connection to ${this.label} was lost while running '${what}' (${this.lostReason || 'no exit status'}).`
            )
          )
        } else settle.resolve({ code, stdout, stderr })
      })
    })
    if (opts.stdin !== undefined) ch.end(opts.stdin)
    else ch.end()
  }

  /**
   * TERM to the whole process group, KILL after 3 s if anything is left; on its own channel. The group is
   * read from /proc (the reported shell is the group's leader on a plain sshd, but not under a
   * ForceCommand or login wrapper that does not exec); without /proc the shell's pid is taken as the
   * group. Written `kill -TERM -PGID`: dash and busybox sh reject `kill -- -PGID`.
   */
  private async killGroup(pid: number): Promise<void> {
    if (!(pid > 1)) return
    const script =
      `p=${pid}; g=$p; if read -r l < /proc/$p/stat 2>/dev/null; then set -- \${l##*) }; g=$3; fi; ` +
      '[ "$g" -gt 1 ] 2>/dev/null || g=$p; ' +
      'kill -TERM -$g 2>/dev/null || kill -TERM $p 2>/dev/null; i=0; ' +
      'while kill -0 -$g 2>/dev/null && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; ' +
      'kill -KILL -$g 2>/dev/null; exit 0'
    let closed!: Promise<void>
    await this.channel(script, true, (ch, release) => {
      closed = new Promise<void>(resolve =>
        ch.on('close', () => {
          release()
          resolve()
        })
      )
      ch.resume()
      ch.stderr.resume()
      ch.end()
    })
    await closed
  }

  async exec(argv: string[], opts: ExecOptions = {}): Promise<RemoteResult> {
    const r = await this.run(commandLine(argv, opts.cwd), opts, argv.join(' ').slice(0, 80))
    return { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') }
  }

  /** Writes a file atomically (see sftp.ts): over the connection's SFTP session, or through sh. */
  async writeFile(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
    return this.files.writeFile(path, data, mode)
  }

  async readFile(path: string): Promise<Buffer> {
    return this.files.readFile(path)
  }

  /** A loopback listener here whose connections are forwarded (direct-tcpip) to 127.0.0.1:port on the host. */
  async tunnel(port: number): Promise<Tunnel> {
    if (this.closed || this.lostReason) throw this.closedError()
    const sockets = new Set<Socket>()
    const server = createServer(sock => {
      sockets.add(sock)
      sock.once('close', () => sockets.delete(sock))
      sock.on('error', () => sock.destroy())
      // the link gone: ssh2 throws ('Not connected') instead of calling back; the local socket is reset
      if (this.closed || this.lostReason) return void sock.destroy()
      try {
        this.client.forwardOut('127.0.0.1', 0, '127.0.0.1', port, (err, stream) => {
          if (err || sock.destroyed) {
            sock.destroy()
            stream?.close()
            return
          }
          stream.on('error', () => sock.destroy())
          sock.pipe(stream).pipe(sock)
          sock.once('close', () => stream.close())
        })
      } catch {
        sock.destroy()
      }
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    return {
      port: (server.address() as AddressInfo).port,
      close: () =>
        new Promise<void>(resolve => {
          for (const s of sockets) s.destroy()
          server.close(() => resolve())
        })
    }
  }

  async close(): Promise<void> {
    if (!this.closed) {
      await new Promise<void>(resolve => {
        this.client.once('close', () => resolve())
        this.client.end()
        setTimeout(resolve, 2000).unref()
      })
    }
    await this.onClose()
  }
}

async function connectVia(
  t: SshTarget,
  opts: SshOptions,
  checker: HostKeyChecker,
  jump?: Jump
): Promise<SshRemote> {
  if (!jump) {
    const c = await openClient(t, opts, checker)
    return new SshRemote(c, t, async () => undefined, opts)
  }
  return jump.through(t, async (sock, release) => {
    const c = await openClient(t, opts, checker, sock, opts.proxyJump)
    return new SshRemote(c, { ...t }, release, opts)
  })
}

/** Connects to one host (through the bastion when `proxyJump` is set); refuses before connecting without a host-key policy. */
export async function connectSsh(opts: ConnectOptions): Promise<SshRemote> {
  const [remote] = await connectHosts([opts.target], opts)
  return remote
}

/**
 * Connects to several hosts at once, sharing one bastion connection. All or nothing: when one fails,
 * the others are closed and the first error is thrown.
 */
export async function connectHosts(targets: SshTarget[], opts: SshOptions): Promise<SshRemote[]> {
  const { checker } = preflight(opts, targets)
  let jump: Jump | undefined
  let releaseJump: (() => Promise<void>) | undefined
  if (opts.proxyJump) {
    jump = new Jump(await openClient(opts.proxyJump, opts, checker))
    releaseJump = jump.acquire() // held until every host is connected
  }
  try {
    const settled = await Promise.allSettled(targets.map(t => connectVia(t, opts, checker, jump)))
    const failed = settled.find(s => s.status === 'rejected')
    if (failed) {
      await Promise.all(settled.map(s => (s.status === 'fulfilled' ? s.value.close() : undefined)))
      throw (failed as PromiseRejectedResult).reason
    }
    return settled.map(s => (s as PromiseFulfilledResult<SshRemote>).value)
  } finally {
    await releaseJump?.()
  }
}

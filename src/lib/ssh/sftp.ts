/**
 * Files on a host, over the connection's single SFTP session or, when the host has none (or gave its
 * slot back to commands), through `sh` on an exec channel. Writes are atomic: a temp file in the same
 * folder, created 0600 and given its final mode before a byte lands, then renamed over the target.
 */
import { randomBytes } from 'node:crypto'
import { posix } from 'node:path'
import type { Client as ClientType, SFTPWrapper } from 'ssh2'
import { UserError, errorMessage } from '../errors.js'
import { commandLine, shellQuote, type ExecOptions } from './remote.js'

/** A command's exit code and raw output. */
export interface RawResult {
  code: number
  stdout: Buffer
  stderr: Buffer
}

/** What the files need from their connection: its label, and raw shell lines run on it (sh, mv, cat). */
export interface ShellRunner {
  readonly label: string
  run(line: string, opts?: ExecOptions, what?: string): Promise<RawResult>
}

/** SFTP write size: below every server's packet limit (ssh2 assumes 34000 for non-OpenSSH servers) */
const SFTP_CHUNK = 32 * 1024

function sftpCall<T = void>(f: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    try {
      f((err, v) => (err ? reject(err) : resolve(v as T)))
    } catch (e) {
      reject(e)
    }
  })
}

const lastLine = (b: Buffer): string => b.toString('utf8').trim().split('\n').pop() ?? ''

/** readFile/writeFile of one connection. */
export class RemoteFiles {
  private sftpSession?: Promise<SFTPWrapper | undefined>
  private sftpBusy = 0

  constructor(
    private readonly client: ClientType,
    private readonly shell: ShellRunner,
    private readonly isClosed: () => boolean,
    private readonly fileTransfer?: 'auto' | 'exec'
  ) {}

  /** Runs f over SFTP (counted as busy, so a session shortage never closes it mid-use), else fallback. */
  private async withSftp<T>(f: (s: SFTPWrapper) => Promise<T>, fallback: () => Promise<T>): Promise<T> {
    this.sftpBusy++
    try {
      const s = await this.sftp()
      return await (s ? f(s) : fallback())
    } finally {
      this.sftpBusy--
    }
  }

  /** A host short of sessions: give the idle SFTP session's slot back; files go through sh from now on. */
  dropIdleSftp(): void {
    if (!this.sftpSession || this.sftpBusy > 0) return
    const session = this.sftpSession
    this.sftpSession = Promise.resolve(undefined)
    void session.then(s => s?.end())
  }

  /** The connection's SFTP session, opened once; undefined when the host offers none (files then go through sh). */
  private sftp(): Promise<SFTPWrapper | undefined> {
    if (this.fileTransfer === 'exec') return Promise.resolve(undefined)
    this.sftpSession ??= new Promise(resolve => {
      if (this.isClosed()) return resolve(undefined)
      this.client.sftp((err, s) => resolve(err ? undefined : s))
    })
    return this.sftpSession
  }

  private fileError(verb: string, path: string, detail: string): UserError {
    return new UserError(`Could not ${verb} ${path} on ${this.shell.label}: ${detail}`)
  }

  /**
   * Atomic write: a temp file in the same folder, created 0600 (O_EXCL) and given its final mode before
   * any byte lands, then renamed over the target. Over SFTP (open, fchmod + pipelined writes + close,
   * posix-rename: 3 round trips, no shell started) or, without SFTP, one `sh` with the data on stdin.
   */
  async writeFile(path: string, data: string | Buffer, mode: number): Promise<void> {
    if (!path.startsWith('/')) throw new Error(`writeFile needs an absolute path, got ${path}`)
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    return this.withSftp(
      s => this.writeFileSftp(s, path, buf, mode),
      () => this.writeFileSh(path, buf, mode)
    )
  }

  private async writeFileSftp(s: SFTPWrapper, path: string, buf: Buffer, mode: number): Promise<void> {
    const tmp = `${posix.dirname(path)}/.${posix.basename(path)}.shipline-${randomBytes(6).toString('hex')}`
    let handle: Buffer
    try {
      handle = await sftpCall<Buffer>(cb => s.open(tmp, 'wx', { mode: 0o600 }, cb))
    } catch (e) {
      throw this.fileError('write', path, errorMessage(e))
    }
    let renamed = false
    try {
      const steps: Promise<unknown>[] = [sftpCall(cb => s.fchmod(handle, mode & 0o7777, cb))]
      for (let off = 0; off < buf.length; off += SFTP_CHUNK) {
        const len = Math.min(SFTP_CHUNK, buf.length - off)
        // every chunk is its own request, all in flight at once (ssh2 alone would send one after another)
        steps.push(sftpCall(cb => s.write(handle, buf, off, len, off, cb)))
      }
      steps.push(sftpCall(cb => s.close(handle, cb)))
      await Promise.all(steps)
      try {
        await sftpCall(cb => s.ext_openssh_rename(tmp, path, cb))
      } catch (e) {
        if (!/does not support/.test(errorMessage(e))) throw e
        const r = await this.shell.run(commandLine(['mv', '-f', '--', tmp, path]), {}, `mv ${path}`)
        if (r.code !== 0) throw new Error(r.stderr.toString('utf8').trim())
      }
      renamed = true
    } catch (e) {
      throw this.fileError('write', path, errorMessage(e))
    } finally {
      if (!renamed) await sftpCall(cb => s.unlink(tmp, cb)).catch(() => undefined)
    }
  }

  private async writeFileSh(path: string, data: Buffer, mode: number): Promise<void> {
    const dir = posix.dirname(path)
    const base = posix.basename(path)
    // mktemp makes the temp file 0600; chmod to the final mode before a byte lands; rename is atomic
    const script =
      'set -e; umask 077; t=$(mktemp "$2/.$3.shipline-XXXXXX"); trap \'rm -f "$t"\' EXIT; ' +
      'chmod "$4" "$t"; cat > "$t"; mv -f -- "$t" "$1"; trap - EXIT'
    const octal = (mode & 0o7777).toString(8).padStart(4, '0')
    const line = ['sh', '-c', script, 'sh', path, dir, base, octal].map(shellQuote).join(' ')
    const r = await this.shell.run(line, { stdin: data }, `write ${path}`)
    if (r.code !== 0) throw this.fileError('write', path, `exit ${r.code}: ${lastLine(r.stderr)}`)
  }

  async readFile(path: string): Promise<Buffer> {
    return this.withSftp(
      s =>
        sftpCall<Buffer>(cb => s.readFile(path, cb)).catch(e => {
          throw this.fileError('read', path, errorMessage(e))
        }),
      () => this.readFileSh(path)
    )
  }

  private async readFileSh(path: string): Promise<Buffer> {
    const r = await this.shell.run(commandLine(['cat', '--', path]), {}, `cat ${path}`)
    if (r.code !== 0) throw this.fileError('read', path, `exit ${r.code}: ${lastLine(r.stderr)}`)
    return r.stdout
  }
}

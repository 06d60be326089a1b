/**
 * What the compose-host code needs from a connection to a host. The SSH transport (src/lib/ssh/client.ts)
 * implements it over one reused ssh2 connection; nothing else in the suite talks to a host directly.
 *
 * Commands are argv arrays: each element is quoted for the remote POSIX shell by the transport, never
 * pasted. Secrets travel as stdin or as file contents written over SFTP/stdin, never as argv.
 */
export interface RemoteResult {
  code: number
  stdout: string
  stderr: string
}

export interface ExecOptions {
  /** bytes fed to the command's stdin, then stdin is closed */
  stdin?: string | Buffer
  /**
   * kill the remote command (and fail) after this long: the SSH transport kills the command's whole
   * process group on the host and rejects with RemoteTimeoutError (a UserError carrying the partial output)
   */
  timeoutMs?: number
  /** working directory on the host (quoted like any argument) */
  cwd?: string
  /** streamed output, e.g. for logs */
  onStdout?: (chunk: string) => void
  onStderr?: (chunk: string) => void
}

export interface Remote {
  /** human label, e.g. deploy@10.0.0.5:22 */
  readonly label: string
  /** runs one command; resolves with its exit code (does not throw on non-zero) */
  exec(argv: string[], opts?: ExecOptions): Promise<RemoteResult>
  /** writes a file atomically (temp file + rename) with the given mode (default 0o644) */
  writeFile(path: string, data: string | Buffer, mode?: number): Promise<void>
  readFile(path: string): Promise<Buffer>
  close(): Promise<void>
  /** false once the connection is known to be gone (optional: a Remote that cannot tell leaves it out) */
  isOpen?(): boolean
  /**
   * Reaches `port` on the host's own loopback from here: a listener on this machine's 127.0.0.1 whose
   * connections are carried to the host inside the connection (no port is exposed on the host). A Remote
   * that is this machine may leave it out: the port is then reached directly.
   */
  tunnel?(port: number): Promise<Tunnel>
}

export interface Tunnel {
  /** the local port (127.0.0.1) that reaches the host's port */
  readonly port: number
  close(): Promise<void>
}

/** Quotes one argument for a POSIX shell: 'it'\''s' style, safe for any byte string without NUL. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new Error('argument contains a NUL byte')
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg
  return `'${arg.replace(/'/g, `'\\''`)}'`
}

export function shellJoin(argv: string[]): string {
  return argv.map(shellQuote).join(' ')
}

/** Quotes argv for the remote shell; the command word is always quoted (so `A=b` or `if` stay plain words). */
export function commandLine(argv: string[], cwd?: string): string {
  if (argv.length === 0) throw new Error('exec needs a command')
  const first = shellQuote(argv[0])
  const words = [first.startsWith("'") ? first : `'${first}'`, ...argv.slice(1).map(shellQuote)]
  return (cwd !== undefined ? `cd -- ${shellQuote(cwd)} && ` : '') + words.join(' ')
}

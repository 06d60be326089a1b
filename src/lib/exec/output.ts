/**
 * What is kept of a command's output: redacted first (so a cap never cuts a secret in two and leaves half
 * of it readable), then capped to `limit` bytes per stream: the first and the last half, with the number of
 * bytes left out between them. Also the line splitter that streams output into the log, a host prefix on
 * every line.
 */

/** How much of each stream travels from the host at all (src/lib/exec/scripts.ts EXEC_SCRIPT's `cap`). */
export const HOST_CAP_BYTES = 16 * 1024 * 1024

export interface Capped {
  text: string
  /** bytes of the stream as it came from the host (after redaction) */
  bytes: number
  /** something was left out (here, or on the host beyond its cap) */
  truncated: boolean
}

/** Cuts a UTF-8 buffer at a character boundary at or before `at` (never inside a multi-byte character). */
function boundary(buf: Buffer, at: number): number {
  let i = Math.max(0, Math.min(at, buf.length))
  while (i > 0 && i < buf.length && (buf[i] & 0xc0) === 0x80) i--
  return i
}

/**
 * The text capped to `limit` bytes: whole when it fits, else its first and last `limit / 2` bytes around
 * one `[… N bytes left out …]` line. `hostCap`: the host's own cap; a stream that reached it is marked.
 */
export function capOutput(text: string, limit: number, hostCap = HOST_CAP_BYTES): Capped {
  const buf = Buffer.from(text, 'utf8')
  const atHostCap = buf.length >= hostCap
  const note = atHostCap ? `\n[… output beyond ${hostCap} bytes was dropped on the host …]\n` : ''
  if (buf.length <= limit) return { text: text + note, bytes: buf.length, truncated: atHostCap }
  const half = Math.floor(limit / 2)
  const head = boundary(buf, half)
  let tail = buf.length - (limit - half)
  while (tail < buf.length && (buf[tail] & 0xc0) === 0x80) tail++
  const left = tail - head
  return {
    text:
      buf.subarray(0, head).toString('utf8') +
      `\n[… ${left} bytes left out …]\n` +
      buf.subarray(tail).toString('utf8') +
      note,
    bytes: buf.length,
    truncated: true
  }
}

/** The first and last `n` lines of a text (for the summary): all of it when short. */
export function headTail(text: string, n = 5): { first: string[]; last: string[]; lines: number } {
  const lines = text.replace(/\n$/, '').split('\n')
  if (text === '') return { first: [], last: [], lines: 0 }
  if (lines.length <= 2 * n) return { first: lines, last: [], lines: lines.length }
  return { first: lines.slice(0, n), last: lines.slice(-n), lines: lines.length }
}

/**
 * Splits streamed chunks into lines and hands each complete one (and the last partial one on end()) to
 * `emit`; a line longer than `maxLine` characters is passed on in pieces.
 */
export class LineSplitter {
  private rest = ''
  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxLine = 4096
  ) {}

  write(chunk: string): void {
    this.rest += chunk
    let nl: number
    while ((nl = this.rest.indexOf('\n')) >= 0) {
      this.line(this.rest.slice(0, nl).replace(/\r$/, ''))
      this.rest = this.rest.slice(nl + 1)
    }
    while (this.rest.length > this.maxLine) {
      this.emit(this.rest.slice(0, this.maxLine))
      this.rest = this.rest.slice(this.maxLine)
    }
  }

  end(): void {
    if (this.rest) this.line(this.rest.replace(/\r$/, ''))
    this.rest = ''
  }

  private line(text: string): void {
    if (text.length <= this.maxLine) return this.emit(text)
    for (let i = 0; i < text.length; i += this.maxLine) this.emit(text.slice(i, i + this.maxLine))
  }
}

/**
 * A minimal ustar writer: a release's few small files in one archive, so the upload is one remote
 * command (`tar -xf -` with the archive on stdin) instead of one round trip per file. Regular files only,
 * names up to 100 bytes, mode kept (the .env goes in as 0600).
 */
export interface TarEntry {
  name: string
  data: string | Buffer
  mode?: number
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

export function tar(entries: TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const data = Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data)
    const name = Buffer.from(e.name)
    if (name.length > 100 || e.name.includes('/')) throw new Error(`tar: bad entry name '${e.name}'`)
    const h = Buffer.alloc(512)
    name.copy(h, 0)
    h.write(octal(e.mode ?? 0o644, 8), 100, 'ascii')
    h.write(octal(0, 8), 108, 'ascii')
    h.write(octal(0, 8), 116, 'ascii')
    h.write(octal(data.length, 12), 124, 'ascii')
    h.write(octal(mtime, 12), 136, 'ascii')
    h.write('        ', 148, 'ascii')
    h.write('0', 156, 'ascii')
    h.write('ustar\0' + '00', 257, 'ascii')
    let sum = 0
    for (const b of h) sum += b
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii')
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

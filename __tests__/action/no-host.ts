/** A TCP listener that counts connections: the "host" (or registry) an input-error test must never reach. */
import { afterAll, beforeAll } from '@jest/globals'
import { createServer, type AddressInfo, type Server } from 'node:net'

export interface Tripwire {
  host: string
  port: number
  /** connections accepted so far */
  hits(): number
  close(): Promise<void>
}

/** `status`: what a client that did get through is answered (404: fails fast; 200: an empty success). */
export async function tripwire(status: 200 | 404 = 404): Promise<Tripwire> {
  let hits = 0
  const server: Server = createServer(socket => {
    hits++
    // whatever was sent, one short HTTP answer (a client that did get this far fails fast, not by retrying)
    socket.once('data', () =>
      socket.end(
        `HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Not Found'}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`
      )
    )
    socket.on('error', () => undefined)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    host: '127.0.0.1',
    port,
    hits: () => hits,
    close: () => new Promise<void>(resolve => server.close(() => resolve()))
  }
}

/**
 * A tripwire for the whole test file: started before the tests, closed after them. `get()` is the running
 * one (call it inside tests and builders, not at the file's top level).
 */
export function useTripwire(status: 200 | 404 = 404): () => Tripwire {
  let wire: Tripwire | undefined
  beforeAll(async () => {
    wire = await tripwire(status)
  })
  afterAll(async () => {
    await wire?.close()
  })
  return () => wire!
}

/** SSH inputs good enough to get past every check (a pinned host key, a password), aimed at the tripwire. */
export const sshInputs = (t: Tripwire): Record<string, string> => ({
  hosts: `deploy@${t.host}:${t.port}`,
  'ssh-password': 'pw-0123456789',
  'host-fingerprint': 'SHA256:' + 'A'.repeat(43),
  path: '/opt/app'
})

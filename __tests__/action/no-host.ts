/** A TCP listener that counts connections: the "host" (or registry) an input-error test must never reach. */
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

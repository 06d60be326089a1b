/**
 * A loopback TCP forwarder for fault tests: put it in front of a real server (an sshd) and cut() every live
 * connection through it at a chosen moment, the way a dropped network link ends an SSH session. New
 * connections still pass after a cut, so a reconnect (or the next deploy) works.
 *
 * Both sides of each connection are destroyed at once: the client sees its socket end (ssh2: "connection
 * lost"), the server sees the peer go away (sshd ends the session, which is what the host-side lock holder
 * notices). Only 127.0.0.1 is used.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface TcpCut {
  host: '127.0.0.1'
  port: number
  /** connections accepted so far */
  accepted(): number
  /** connections open right now */
  live(): number
  /** cuts made so far and the connections each one destroyed */
  cuts(): number[]
  /** destroys every live connection, both ways; new connections still pass */
  cut(): void
  stop(): Promise<void>
}

export async function startTcpCut(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpCut> {
  const pairs = new Set<[Socket, Socket]>()
  const cutLog: number[] = []
  let accepted = 0
  const server: Server = createServer(client => {
    accepted++
    client.setNoDelay(true)
    const upstream = connect({ port: targetPort, host: targetHost })
    upstream.setNoDelay(true)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    const end = (): void => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', end)
    upstream.on('error', end)
    client.on('close', end)
    upstream.on('close', end)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const addr = server.address()
  const port = typeof addr === 'object' && addr ? addr.port : 0
  const cut = (): void => {
    cutLog.push(pairs.size)
    for (const pair of [...pairs]) {
      pairs.delete(pair)
      // resetAndDestroy sends an RST where the platform allows it (a link that just vanished)
      for (const s of pair) {
        const r = (s as Socket & { resetAndDestroy?: () => Socket }).resetAndDestroy
        if (typeof r === 'function') r.call(s)
        else s.destroy()
      }
    }
  }
  return {
    host: '127.0.0.1',
    port,
    accepted: () => accepted,
    live: () => pairs.size,
    cuts: () => [...cutLog],
    cut,
    stop: async () => {
      cut()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

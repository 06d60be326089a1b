/**
 * proxy-jump: one bastion connection carries every host of a deploy. Each host is reached through a
 * `forwardOut` stream on it, over which a second ssh2 client does its own handshake (host key checked
 * like any host's); the bastion connection ends with the last connection through it.
 */
import type { Client as ClientType, ConnectConfig } from 'ssh2'
import { UserError } from '../errors.js'
import type { SshTarget } from './hosts.js'

/** A bastion connection shared by every host that hops through it; closed with the last of them. */
export class Jump {
  private users = 0
  constructor(readonly client: ClientType) {}
  acquire(): () => Promise<void> {
    this.users++
    let done = false
    return async () => {
      if (done) return
      done = true
      if (--this.users === 0) this.client.end()
    }
  }
  forward(t: SshTarget): Promise<ConnectConfig['sock']> {
    return new Promise((resolve, reject) => {
      this.client.forwardOut('127.0.0.1', 0, t.host, t.port, (err, stream) => {
        if (err)
          reject(
            new UserError(
              `The bastion could not open a connection to ${t.host}:${t.port} (${err.message}): check that the bastion reaches it and allows TCP forwarding (AllowTcpForwarding).`
            )
          )
        else resolve(stream)
      })
    })
  }

  /**
   * Opens a connection to `t` through the bastion: `open` gets the forwarded stream and the release it
   * must call when that connection closes; when opening fails, the release is done here.
   */
  async through<T>(
    t: SshTarget,
    open: (sock: ConnectConfig['sock'], release: () => Promise<void>) => Promise<T>
  ): Promise<T> {
    const release = this.acquire()
    try {
      const sock = await this.forward(t)
      return await open(sock, release)
    } catch (e) {
      await release()
      throw e
    }
  }
}

/**
 * connect() for exec over the SSH transport deploys use (src/lib/ssh/client.ts): one connection per host,
 * where one unreachable host must not keep the others from running. Without a bastion each host is
 * connected on its own; through `proxyJump` all hosts are connected at once over one bastion connection,
 * and only when that fails is each host connected by itself (so the failing one names its own reason).
 */
import { connectHosts, type SshOptions } from '../ssh/client.js'
import { formatTarget, type SshTarget } from '../ssh/hosts.js'
import type { Remote } from '../ssh/remote.js'

export function hostConnector(
  targets: SshTarget[],
  options: SshOptions
): { hosts: string[]; connect(label: string): Promise<Remote> } {
  const hosts = targets.map(formatTarget)
  let together: Promise<Remote[] | undefined> | undefined
  const alone = async (i: number): Promise<Remote> => (await connectHosts([targets[i]], options))[0]
  return {
    hosts,
    async connect(label: string): Promise<Remote> {
      const i = hosts.indexOf(label)
      if (i < 0) throw new Error(`unknown host ${label}`)
      if (!options.proxyJump) return alone(i)
      together ??= connectHosts(targets, options).catch(() => undefined)
      const all = await together
      const mine = all?.[i]
      if (mine && mine.isOpen?.() !== false) return mine
      return alone(i)
    }
  }
}

/**
 * One interface over the proxies that route a service's traffic between its two slots on a host: nginx
 * (include file + test + reload), haproxy (runtime API over its admin socket, no reload) and caddy (admin
 * API, no reload). The blue-green switch and a weighted canary are both a sequence of setWeights → apply:
 *
 *   blue-green   [{port: live, weight: 0}, {port: new, weight: 100}]            (one step)
 *   canary       [{live, 95}, {new, 5}] → [{live, 50}, {new, 50}] → [{live, 0}, {new, 100}]
 *
 * Every step is bounded (each remote call has a timeout) and leaves the previous routing in place when it
 * fails: apply() puts the previous routing back and its ProxyError says that it did (or that it could not).
 */
import { UserError } from '../errors.js'
import type { Remote } from '../ssh/remote.js'

export type ProxyName = 'nginx' | 'haproxy' | 'caddy'

/** Relative weights, 0-100: 0 takes no new requests; the shares are weight / sum of weights. */
export interface Backend {
  /** the host port (127.0.0.1:<port>) a slot publishes */
  port: number
  weight: number
}

/** ready: takes traffic by weight; drain: weight 0, finishing what it has; down/maint: takes nothing. */
export type BackendStateName = 'ready' | 'drain' | 'down' | 'maint'

export interface BackendState extends Backend {
  state: BackendStateName
}

export interface ProxyAdapter {
  readonly name: ProxyName
  /** stages the backends of one service (several calls stage several services); nothing live changes */
  setWeights(service: string, backends: Backend[]): void
  /** checks the staged change against the proxy without changing its routing; throws a ProxyError */
  test(): Promise<void>
  /**
   * makes the staged change live (and clears it); on failure the previous routing serves again and the
   * ProxyError says so (`restored`)
   */
  apply(): Promise<void>
  /** what the proxy routes for a service now, as the proxy reports it */
  readBack(service: string): Promise<BackendState[]>
  /**
   * The staged change as one argv to run on the host later, without this runner (inside the release
   * store's close step, or in a recovery script), and clears it. It reads nothing when it runs: the
   * routing it was planned against must not change meanwhile (the deploy lock holds it). When it fails it
   * puts the previous routing back itself and exits non-zero with an `ERR …` line.
   */
  switchArgv(): Promise<string[]>
}

export interface AdapterHost {
  readonly remote: Remote
  /** human label for messages, e.g. deploy@vps1 */
  readonly label: string
}

/** A failed test or apply: the message says what failed and whether the previous routing is back. */
export class ProxyError extends UserError {
  constructor(
    message: string,
    /** true when the previous routing serves (nothing changed, or it was put back) */
    readonly restored: boolean,
    details?: string
  ) {
    super(message, details)
  }
}

/** The name a service's upstream / backend / handler id has in the user's proxy config. */
export const upstreamName = (service: string): string => `shipline_${service.replace(/[^A-Za-z0-9_]/g, '_')}`

/** Checks one service's backends: 1-2 distinct ports in 1-65535, integer weights 0-100, one above 0. */
export function checkBackends(proxy: string, service: string, backends: Backend[]): Backend[] {
  const what = `${proxy}: backends of '${service}'`
  if (backends.length < 1 || backends.length > 2)
    throw new UserError(`${what}: give one or two (one per slot), got ${backends.length}.`)
  const ports = new Set<number>()
  for (const b of backends) {
    if (!Number.isInteger(b.port) || b.port < 1 || b.port > 65535)
      throw new UserError(`${what}: port ${b.port} is outside 1-65535.`)
    if (ports.has(b.port))
      throw new UserError(`${what}: port ${b.port} is named twice; give each slot its own.`)
    ports.add(b.port)
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > 100)
      throw new UserError(`${what}: weight ${b.weight} of port ${b.port} must be a whole number 0-100.`)
  }
  if (!backends.some(b => b.weight > 0))
    throw new UserError(`${what}: every weight is 0, so nothing would serve; give one slot a weight above 0.`)
  return backends.map(b => ({ port: b.port, weight: b.weight }))
}

/** What the adapters share: the host, and the backends staged per service until apply(). */
export abstract class StagedAdapter implements ProxyAdapter {
  abstract readonly name: ProxyName
  protected readonly staged = new Map<string, Backend[]>()

  constructor(readonly host: AdapterHost) {}

  setWeights(service: string, backends: Backend[]): void {
    this.staged.set(service, checkBackends(this.name, service, backends))
  }

  /** the staged services and their backends; throws when nothing is staged */
  protected stagedOrThrow(): [string, Backend[]][] {
    if (this.staged.size === 0) throw new UserError(`${this.name}: nothing staged; call setWeights() first.`)
    return [...this.staged]
  }

  /** a failed step: `<host>: <what>; <whether the previous routing is back>. <fix>` */
  protected failed(what: string, restored: boolean, fix: string, details?: string): ProxyError {
    const note = restored
      ? 'the previous routing was put back and serves'
      : 'putting the previous routing back failed too: check the proxy by hand'
    return new ProxyError(`${this.host.label}: ${what}; ${note}. ${fix}`, restored, details)
  }

  abstract test(): Promise<void>
  abstract apply(): Promise<void>
  abstract readBack(service: string): Promise<BackendState[]>
  abstract switchArgv(): Promise<string[]>
}

/**
 * caddy: the admin API (default http://127.0.0.1:2019 on the host), reached with curl on the host through
 * the Remote, no reload of files. Each service is a `reverse_proxy` handler the user tags with
 * `"@id": "shipline_<service>"`; apply() replaces its `upstreams` (PATCH /id/<id>/upstreams), readBack()
 * GETs /id/<id>. caddy loads the changed config as a whole and keeps the old one when the new one fails.
 *
 * Weights: caddy 2.6 has no weighted selection policy (`weighted_round_robin` came with 2.7; 2.6.2 lists
 * first, random, random_choose, least_conn, round_robin, ip_hash, uri_hash, header, cookie). The share
 * is made by repeating an upstream: weights reduced by their greatest common divisor, each port listed as
 * often as its weight (95/5 → 19 × live, 1 × new), picked by `round_robin` (exact) or `random` (caddy's
 * default; in expectation). A weight-0 port is left out of the list: caddy keeps no idle upstream.
 */
import { UserError, errorMessage } from '../errors.js'
import { CADDY_SCRIPT } from './scripts.js'
import { StagedAdapter, upstreamName, type AdapterHost, type Backend, type BackendState } from './types.js'

export interface CaddyAdapterOptions {
  /** the admin endpoint as the host reaches it (default http://127.0.0.1:2019) */
  admin?: string
  /** bound of each remote call (default 30 s; each request at most 10 s) */
  timeoutMs?: number
}

interface Upstream {
  dial?: string
}
interface Handler {
  handler?: string
  upstreams?: Upstream[]
  load_balancing?: { selection_policy?: { policy?: string } }
}

const POLICIES = [undefined, 'random', 'round_robin']
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))

/** The upstream list that gives `backends` their shares. */
export function caddyUpstreams(backends: Backend[]): Upstream[] {
  const live = backends.filter(b => b.weight > 0)
  const g = live.reduce((a, b) => gcd(a, b.weight), 0)
  return live.flatMap(b => Array.from({ length: b.weight / g }, () => ({ dial: `127.0.0.1:${b.port}` })))
}

/** The shares of an upstream list as weights summing to 100. */
export function caddyShares(upstreams: Upstream[]): BackendState[] {
  const counts = new Map<number, number>()
  for (const u of upstreams) {
    const port = Number(/:(\d+)$/.exec(u.dial ?? '')?.[1])
    if (port) counts.set(port, (counts.get(port) ?? 0) + 1)
  }
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  return [...counts].map(([port, n]) => ({ port, weight: Math.round((n * 100) / total), state: 'ready' }))
}

export class CaddyAdapter extends StagedAdapter {
  readonly name = 'caddy' as const
  readonly admin: string

  constructor(
    host: AdapterHost,
    readonly opts: CaddyAdapterOptions = {}
  ) {
    super(host)
    this.admin = (opts.admin ?? 'http://127.0.0.1:2019').replace(/\/+$/, '')
    if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}$/.test(this.admin))
      throw new UserError(
        `caddy: the admin endpoint must be http://127.0.0.1:<port> (the host's loopback), got '${this.admin}'.`
      )
  }

  /** one admin API request through curl on the host */
  private async request(
    method: string,
    path: string,
    body?: unknown
  ): Promise<{ status: number; body: string }> {
    const argv = ['curl', '-sS', '--max-time', '10', '-X', method, '-o', '-', '-w', '\n@@status %{http_code}']
    if (body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', '@-')
    argv.push(`${this.admin}${path}`)
    let r
    try {
      r = await this.host.remote.exec(argv, {
        timeoutMs: this.opts.timeoutMs ?? 30_000,
        stdin: body === undefined ? undefined : JSON.stringify(body)
      })
    } catch (e) {
      throw new UserError(`${this.host.label}: caddy ${method} ${path} did not finish: ${errorMessage(e)}`)
    }
    const m = /\n@@status (\d+)$/.exec(r.stdout)
    if (r.code !== 0 || !m)
      throw new UserError(
        `${this.host.label}: caddy's admin API ${this.admin} did not answer (curl exit ${r.code}: ${r.stderr.trim()}). Is caddy running with its admin endpoint there (and curl installed on the host)?`
      )
    return { status: Number(m[1]), body: r.stdout.slice(0, m.index) }
  }

  /** the service's reverse_proxy handler; throws a UserError naming the Caddy config fix */
  async handler(service: string): Promise<Handler> {
    const id = upstreamName(service)
    const r = await this.request('GET', `/id/${id}`)
    if (r.status !== 200)
      throw new UserError(
        `${this.host.label}: caddy has no config object "@id": "${id}" (${r.status} ${r.body.trim()}). Tag the reverse_proxy handler of '${service}' with it (docs/strategies.md, Proxy adapters).`
      )
    let h: Handler
    try {
      h = JSON.parse(r.body) as Handler
    } catch {
      throw new UserError(
        `${this.host.label}: caddy answered /id/${id} with no JSON: ${r.body.slice(0, 200)}`
      )
    }
    if (h.handler !== 'reverse_proxy')
      throw new UserError(
        `${this.host.label}: caddy's "@id": "${id}" is a '${h.handler}' handler; put it on the reverse_proxy.`
      )
    const policy = h.load_balancing?.selection_policy?.policy
    if (!POLICIES.includes(policy))
      throw new UserError(
        `${this.host.label}: caddy's ${id} picks upstreams by '${policy}', which ignores the shares shipline sets; use "selection_policy": {"policy": "round_robin"}.`
      )
    return h
  }

  /** replaces a handler's upstreams; throws a UserError with caddy's answer when it refuses */
  private async put(service: string, had: boolean, upstreams: Upstream[]): Promise<void> {
    const path = `/id/${upstreamName(service)}/upstreams`
    const r = await this.request(had ? 'PATCH' : 'PUT', path, upstreams)
    if (r.status !== 200) throw new UserError(`caddy answered ${r.status}: ${r.body.trim().slice(0, 300)}`)
  }

  async test(): Promise<void> {
    for (const [s] of this.stagedOrThrow()) await this.handler(s)
  }

  async apply(): Promise<void> {
    const done: { service: string; before?: Upstream[] }[] = []
    for (const [service, backends] of this.stagedOrThrow()) {
      let before: Upstream[] | undefined
      try {
        before = (await this.handler(service)).upstreams
        await this.put(service, before !== undefined, caddyUpstreams(backends))
        done.push({ service, before })
      } catch (e) {
        let restored = true
        for (const d of done.reverse()) {
          try {
            await this.put(d.service, true, d.before ?? [])
          } catch {
            restored = false
          }
        }
        throw this.failed(
          `caddy: switching '${service}' failed: ${errorMessage(e)}`,
          restored,
          'Fix the Caddy config (or the weights) and run again.'
        )
      }
    }
    this.staged.clear()
  }

  async switchArgv(): Promise<string[]> {
    const args: string[] = []
    for (const [service, backends] of this.stagedOrThrow()) {
      const before = (await this.handler(service)).upstreams
      args.push(
        upstreamName(service),
        before === undefined ? 'PUT' : 'PATCH',
        JSON.stringify(caddyUpstreams(backends)),
        JSON.stringify(before ?? [])
      )
    }
    this.staged.clear()
    return ['sh', '-c', CADDY_SCRIPT, 'sh', this.admin, ...args]
  }

  async readBack(service: string): Promise<BackendState[]> {
    return caddyShares((await this.handler(service)).upstreams ?? [])
  }
}

/**
 * How deploy() and rollback() get a host that follows the chosen strategy and target: they call
 * `makeHost(remote, opts)` (Common.makeHost) instead of `new ComposeHost(…)`; everything else (lock,
 * upload, images, ledger, fleet, auto-rollback, revert) stays theirs.
 *
 * BlueGreenHost maps deploy()'s two container steps onto the blue-green phases: `up` starts the release in
 * the idle slot (after the memory check), `waitHealthy` waits for it, switches nginx, drains and stops the
 * old slot. Putting back the release that still serves (after a failed switch) is a no-op; any other
 * release (a rollback, a revert of a switched host) goes through the same switch, so it drops nothing either.
 */
import type { Remote } from '../ssh/remote.js'
import { UserError } from '../errors.js'
import { ComposeHost, type ComposeHostOptions, type HealthResult, type ReleaseMeta } from '../compose/host.js'
import { SwarmHost, validateStackName } from '../swarm/host.js'
import { BlueGreen, type Started } from './blue-green.js'
import type { BlueGreenConfig, StrategyName } from './options.js'

export type Target = 'compose' | 'swarm'

export function parseTarget(raw: string): Target {
  const v = raw.trim().toLowerCase()
  if (v === '' || v === 'compose') return 'compose'
  if (v === 'swarm') return 'swarm'
  throw new UserError(`Input 'target' must be 'compose' or 'swarm', got '${raw.trim()}'.`)
}

export interface HostChoice {
  strategy: StrategyName
  target: Target
  blueGreen?: BlueGreenConfig
  /** swarm: the stack name (default: the Compose project name of the path) */
  stack?: string
}

export type MakeHost = (remote: Remote, opts: ComposeHostOptions) => ComposeHost

/** The host factory for deploy()/rollback(); undefined for the default (recreate on Compose). */
export function hostFactory(c: HostChoice): MakeHost | undefined {
  if (c.target === 'swarm') {
    if (c.strategy === 'blue-green')
      throw new UserError(
        `'strategy: blue-green' is for Compose hosts; with 'target: swarm' updates are start-first already. Remove 'strategy' or set it to 'recreate'.`
      )
    const stack = c.stack === undefined ? undefined : validateStackName(c.stack)
    return (remote, opts) => new SwarmHost(remote, { ...opts, stack })
  }
  if (c.strategy === 'blue-green') {
    if (!c.blueGreen || c.blueGreen.ports.size === 0)
      throw new UserError(
        `'strategy: blue-green' needs 'blue-green-ports': one line per service, service=<blue port>,<green port>, e.g. 'web=8001,8002'.`
      )
    const cfg = c.blueGreen
    return (remote, opts) => new BlueGreenHost(remote, opts, cfg)
  }
  return undefined
}

export class BlueGreenHost extends ComposeHost {
  readonly bg: BlueGreen
  private started?: Started
  private noop = false
  private others: string[] = []

  constructor(remote: Remote, opts: ComposeHostOptions, cfg: BlueGreenConfig) {
    super(remote, opts)
    // health timeout and stable seconds come with each waitHealthy call
    this.bg = new BlueGreen(this, cfg, { healthTimeout: 120 })
  }

  override async up(meta: ReleaseMeta, services: string[] | undefined, recoverScript: string): Promise<void> {
    const slotted = this.bg.services
    const missing = slotted.filter(s => !meta.services.includes(s))
    if (missing.length)
      throw new UserError(
        `Input 'blue-green-ports' names ${missing.join(', ')}, which the compose files do not define. Known: ${meta.services.join(', ')}.`
      )
    this.started = undefined
    // services without slots (a database, a worker) are recreated in the main project as before
    this.others = (services ?? meta.services).filter(s => !slotted.includes(s))
    if (this.others.length) await super.up(meta, this.others, recoverScript)
    const probe = await this.bg.probe()
    // putting back the release the live slot still serves (the new one failed before the switch): nothing to do
    this.noop = probe.release === meta.id && probe.slot !== undefined
    if (this.noop) {
      this.log.info(`${this.label}: ${meta.version} still serves from the ${probe.slot} slot`)
      return
    }
    const st = await this.bg.start(meta)
    if ('ok' in st) {
      this.failedStart = st
      return
    }
    this.started = st
  }

  private failedStart?: HealthResult

  override async waitHealthy(
    services: string[],
    timeoutSec: number,
    opts: { stableSec?: number; tail?: number } = {}
  ): Promise<HealthResult> {
    const others = services.filter(s => this.others.includes(s))
    if (others.length) {
      const h = await super.waitHealthy(others, timeoutSec, opts)
      if (!h.ok) {
        if (this.started) await this.bg.stop(`${this.layout.project}-${this.started.idle}`, 0)
        this.started = undefined
        return h
      }
    }
    if (this.failedStart) {
      const f = this.failedStart
      this.failedStart = undefined
      return f
    }
    if (this.noop || !this.started)
      return { ok: true, result: 'healthy', state: 'live slot unchanged', logs: '' }
    const st = this.started
    this.started = undefined
    this.bg.opts.healthTimeout = timeoutSec
    this.bg.opts.stableSeconds = opts.stableSec
    const r = await this.bg.complete(st)
    if (!r.ok && r.nginx) return { ...r, state: `${r.state}; ${r.nginx}` }
    return r
  }

  /** Until the switch the old slot keeps serving, so a lost connection needs no recovery of containers. */
  override recoverScript(): string {
    return ''
  }
}

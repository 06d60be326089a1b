/**
 * The blue-green runtime: each service named in `blue-green-ports` runs in one of two slots behind the
 * host's nginx (src/lib/strategy/blue-green.ts does the slot work). Mapped onto the transaction:
 *
 *   start       services without a slot (a database, a worker) are recreated in the main project, then the
 *               release starts in the idle slot (after the memory check); nothing that serves changes
 *   waitHealthy those services, then the idle slot
 *   cutOverArgv nginx → the idle slot, run inside the store's close step together with `current`
 *   afterClose  drain, then stop the old slot
 *   restore     the live slot still serves the release being put back (the new one never took traffic):
 *               remove the idle slot, bring the slotless services of that release back
 */
import { UserError, errorMessage } from '../errors.js'
import { shellJoin } from '../ssh/remote.js'
import { BlueGreen, slotProject, upstreamName, type Started } from '../strategy/blue-green.js'
import { STOP_SCRIPT } from '../strategy/scripts.js'
import { walkCanary, type CanaryOptions } from '../strategy/canary.js'
import { SLOTS, type BlueGreenConfig } from '../strategy/options.js'
import { failureLine, type HostState, type ReleaseMeta, type ReleaseStore } from '../release/store.js'
import { ComposeRuntime } from './compose.js'
import {
  withProbe,
  type HealthOptions,
  type HealthResult,
  type RegistryLogin,
  type Runtime
} from './runtime.js'

export class BlueGreenRuntime implements Runtime {
  readonly name = 'blue-green' as const
  readonly main: ComposeRuntime
  readonly bg: BlueGreen
  private started?: Started
  /** the release asked to start already serves from the live slot */
  private noop = false
  /** the recovery armed by start(), re-armed with the proxy reset while a canary walks */
  private recover = ''
  /** the close step's cut-over, planned once the slot passed (waitHealthy) */
  private cutOver: string[] = []
  /** set while a canary step may route traffic to the new slot: sends it all back to the live one */
  private reset?: string[]

  constructor(
    readonly store: ReleaseStore,
    cfg: BlueGreenConfig
  ) {
    this.main = new ComposeRuntime(store)
    const main = this.main
    this.bg = new BlueGreen(
      {
        remote: store.remote,
        layout: store.layout,
        log: store.log,
        label: store.label,
        get compose() {
          return main.kind
        }
      },
      cfg,
      { healthTimeout: 120 }
    )
  }

  accept(state: HostState): void {
    this.main.accept(state)
  }

  prepareFiles(
    _meta: ReleaseMeta,
    files: { name: string; data: string }[]
  ): { name: string; data: string }[] {
    return files
  }

  ensureImages(refs: string[], auth?: RegistryLogin): Promise<string[]> {
    return this.main.ensureImages(refs, auth)
  }

  private slotless(meta: ReleaseMeta, services?: string[]): string[] {
    return (services ?? meta.services).filter(s => !this.bg.services.includes(s))
  }

  async start(meta: ReleaseMeta, services: string[] | undefined, recover: string): Promise<void> {
    const missing = this.bg.services.filter(s => !meta.services.includes(s))
    if (missing.length)
      throw new UserError(
        `Input 'blue-green-ports' names ${missing.join(', ')}, which the compose files do not define. Known: ${meta.services.join(', ')}.`
      )
    this.started = undefined
    this.noop = false
    this.recover = recover
    this.cutOver = []
    this.reset = undefined
    const probe = await this.bg.probe()
    this.noop = probe.release === meta.id && probe.slot !== undefined
    // the memory check refuses before anything is recreated, slotless services included
    const plan = this.noop ? undefined : await this.bg.plan(meta, probe)
    const others = this.slotless(meta, services)
    if (others.length) await this.main.start(meta, others, recover)
    else await this.store.step(['true'], recover)
    if (!plan) {
      this.store.log.info(`${this.store.label}: ${meta.version} still serves from the ${probe.slot} slot`)
      return
    }
    const st = await this.bg.start(meta, plan)
    if ('ok' in st)
      throw new UserError(
        `${this.store.label}: starting ${meta.id} in the idle slot failed: ${st.state}`,
        st.logs
      )
    this.started = st
  }

  async waitHealthy(
    meta: ReleaseMeta,
    services: string[],
    timeoutSec: number,
    opts: HealthOptions = {}
  ): Promise<HealthResult> {
    const others = services.filter(s => !this.bg.services.includes(s))
    if (others.length) {
      // the probe is the slot's: the slotless services are only waited for
      const h = await this.main.waitHealthy(meta, others, timeoutSec, { ...opts, probe: undefined })
      if (!h.ok) {
        if (this.started) await this.bg.discard(this.started)
        this.started = undefined
        return h
      }
    }
    if (this.noop || !this.started)
      return { ok: true, result: 'healthy', state: 'live slot unchanged', logs: '' }
    this.bg.opts.healthTimeout = timeoutSec
    this.bg.opts.stableSeconds = opts.stableSec
    const bad = await this.bg.slotHealth(this.started)
    if (bad) {
      this.started = undefined
      return bad
    }
    const healthy = { ok: true, result: 'healthy', state: `${this.started.idle} slot healthy`, logs: '' }
    const service = opts.probe?.service ?? this.bg.services[0]
    const ports = this.bg.cfg.ports.get(service)
    // the idle slot's own port, before nginx is switched: a failing probe removes the slot, nothing live changes
    const probed = await withProbe(this.store, healthy, ports?.[SLOTS.indexOf(this.started.idle)], opts)
    const h = probed.ok && opts.canary ? await this.canary(this.started, opts.canary, probed) : probed
    if (h.ok) {
      try {
        this.cutOver = await this.bg.cutOverArgv(this.started)
      } catch (e) {
        await this.putBack()
        return { ok: false, result: 'proxy', state: errorMessage(e), logs: (e as UserError).details ?? '' }
      }
      return h
    }
    await this.putBack()
    return h
  }

  /** After a failed step: the traffic back on the live slot (when a canary moved some), the new slot removed. */
  private async putBack(): Promise<void> {
    if (this.reset) {
      const r = await this.store.remote.exec(this.reset, { timeoutMs: 120_000 }).catch(e => ({
        code: -1,
        stdout: `ERR ${errorMessage(e)}`,
        stderr: ''
      }))
      if (r.code !== 0)
        this.store.log.warning(
          `${this.store.label}: sending all traffic back to the live slot failed: ${failureLine(r)}; check ${this.bg.proxy.name}`
        )
      else
        this.store.log.info(`${this.store.label}: ${this.bg.proxy.name}: all traffic back on the live slot`)
      // the recovery without the reset: nothing new routes to the new slot any more
      await this.store.step(['true'], this.recover)
      this.reset = undefined
      // requests the new slot took before the reset finish there (nginx's old workers, haproxy's drain)
      await this.bg.drainWait('the new slot before it is removed')
    }
    if (this.started) await this.bg.discard(this.started)
    this.started = undefined
  }

  /**
   * The weighted steps (src/lib/strategy/canary.ts) once the new slot passed its health gate and probe.
   * Before the first step, the argv that sends all traffic back to the live slot is prepared and armed in
   * the recovery (first: the lock holder runs it before it removes the new slot, should the runner go).
   */
  private async canary(st: Started, opts: CanaryOptions, healthy: HealthResult): Promise<HealthResult> {
    const live = st.live
    if (!live || !st.liveRelease || !this.recover) {
      this.store.log.info(`${this.store.label}: canary: no live slot to compare with; switching at once`)
      return healthy
    }
    this.reset = await this.bg.resetArgv({ ...st, live })
    await this.store.step(
      ['true'],
      `${shellJoin(this.reset)} >/dev/null 2>&1
${this.recover}`
    )
    const ports = new Map(
      this.bg.services.map(s => [s, [this.bg.port(s, live), st.ports[s]] as [number, number]])
    )
    const run = await walkCanary({
      proxy: this.bg.proxy,
      remote: this.store.remote,
      log: this.store.log,
      label: this.store.label,
      ports,
      gateService: opts.service ?? this.bg.services[0],
      opts
    })
    if (run.ok) {
      this.store.log.info(
        `${this.store.label}: canary passed ${opts.steps.map(p => `${p}%`).join(' → ')}; the close step switches to 100%`
      )
      return { ...healthy, state: `${healthy.state}; canary passed (${opts.steps.join(', ')}%)`, canary: run }
    }
    return {
      ok: false,
      result: 'canary-failed',
      state: `${run.reason}; all traffic went back to the live slot`,
      logs: '',
      canary: run
    }
  }

  cutOverArgv(): string[] {
    return this.started && !this.noop ? this.cutOver : []
  }

  async afterClose(): Promise<string[]> {
    const st = this.started
    this.started = undefined
    if (!st) return []
    this.store.log.info(
      `${this.store.label}: ${this.bg.proxy.name} now sends ${this.bg.services.map(upstreamName).join(', ')} to the ${st.idle} slot`
    )
    return this.bg.drain(st)
  }

  async restore(
    meta: ReleaseMeta,
    services: string[],
    timeoutSec: number,
    recover: string,
    opts: HealthOptions = {}
  ): Promise<HealthResult> {
    try {
      await this.putBack()
      const others = this.slotless(meta)
      if (others.length) await this.main.start(meta, others, recover)
      const probe = await this.bg.probe()
      if (probe.release === meta.id && probe.slot !== undefined)
        this.store.log.info(`${this.store.label}: ${meta.version} still serves from the ${probe.slot} slot`)
      else {
        // the live slot does not hold it (a host deployed with recreate before): a full switch to it
        this.bg.opts.healthTimeout = timeoutSec
        this.bg.opts.stableSeconds = opts.stableSec
        const r = await this.bg.activate(meta)
        if (!r.ok) return r
      }
      const check = services.filter(s => others.includes(s))
      return check.length
        ? this.main.waitHealthy(meta, check, timeoutSec, opts)
        : { ok: true, result: 'healthy', state: `${meta.version} serves from the live slot`, logs: '' }
    } catch (e) {
      return { ok: false, result: 'failed', state: errorMessage(e), logs: (e as UserError).details ?? '' }
    }
  }

  /** The idle slot's containers go (read at recovery time from the slot file); slotless services come back. */
  restoreLines(meta: ReleaseMeta): string[] {
    const project = this.store.layout.project
    const others = this.slotless(meta)
    return [
      `live=$(head -n 1 ${shellJoin([`${this.store.layout.state}/slot`])} 2>/dev/null | cut -d' ' -f1)`,
      `if [ "$live" = blue ]; then idle=${shellJoin([slotProject(project, 'green')])}; else idle=${shellJoin([slotProject(project, 'blue')])}; fi`,
      `sh -c ${shellJoin([STOP_SCRIPT])} sh 0 "$idle" ${shellJoin(this.bg.services)}`,
      ...(others.length ? [shellJoin(this.main.upArgv(meta, others))] : [])
    ]
  }

  /** in the main project (where the slotless services, a database, run and its network is) */
  oneOffArgv(meta: ReleaseMeta, service: string, argv: string[], name: string, withDeps: boolean): string[] {
    return this.main.oneOffArgv(meta, service, argv, name, withDeps)
  }
}

/**
 * Blue-green releases on one Compose host behind the host's nginx.
 *
 * Each service named in `blue-green-ports` runs in one of two slots, each its own Compose project
 * (`<project>-blue`, `<project>-green`) publishing its own host port through `${SHIPLINE_PORT}` (also
 * `${SHIPLINE_PORT_<SERVICE>}` and `${SHIPLINE_SLOT}`). activate():
 *
 *   probe (live slot, MemAvailable) → memory headroom for a second copy, else refuse
 *   → `up -d` of the release in the idle slot → wait healthy (the same health script as a recreate deploy)
 *   → write <include-dir>/<service>.conf (`upstream shipline_<service> { server 127.0.0.1:<port>; }`)
 *     atomically → `nginx -t` (else the old files go back) → reload → record the live slot
 *   → drain: the old slot keeps running for drain-seconds, then it is stopped (kept for a rollback);
 *     with keep-previous-warm it keeps running for that window instead (a host-side timer ends it), so a
 *     rollback inside the window is a proxy switch.
 *
 * Until the reload, nothing the old slot serves changes: any failure before it leaves the old slot serving
 * and removes the idle slot's containers. The user's nginx.conf includes the files and proxies to
 * `shipline_<service>`; nginx's graceful reload lets its old workers finish their requests.
 */
import { parse } from 'yaml'
import { randomBytes } from 'node:crypto'
import { UserError, errorMessage } from '../errors.js'
import type { Remote } from '../ssh/remote.js'
import { failureLine, type ReleaseMeta } from '../release/store.js'
import type { Logger } from '../log.js'
import type { HealthResult } from '../runtime/runtime.js'
import { composeHealth } from '../runtime/compose.js'
import { composeArgv, ENV_FILE, type ComposeKind, type Layout } from '../compose/layout.js'
import {
  KEEP_SCRIPT,
  NGINX_SWITCH_SCRIPT,
  PROBE_SCRIPT,
  PROXY_SWITCH_SCRIPT,
  STOP_SCRIPT,
  WAKE_SCRIPT,
  WARM_SCRIPT,
  WARM_TIMER_SCRIPT
} from './scripts.js'
import { upstreamName, type ProxyAdapter } from '../proxy/types.js'
import { makeAdapter } from '../proxy/index.js'
import { nginxUpstream } from '../proxy/nginx.js'
import { envSuffix, memoryLimit, otherSlot, SLOTS, type BlueGreenConfig, type Slot } from './options.js'

/** What blue-green needs of a host (the ReleaseStore's remote and layout, the Compose flavour). */
export interface SlotHost {
  readonly remote: Remote
  readonly layout: Layout
  readonly compose: ComposeKind
  readonly log: Logger
  readonly label: string
}

/** A release as blue-green needs it: its folder's files (ReleaseMeta fits). */
export type SlotRelease = Pick<ReleaseMeta, 'id' | 'version' | 'files' | 'env'>

export interface ActivateResult extends HealthResult {
  /** the slot now live (the new one on success, the old one otherwise) */
  slot?: Slot
  previousSlot?: Slot
  /** service → host port now in the upstream */
  ports: Record<string, number>
  /** set when the failure happened at nginx (test or reload) rather than in the containers */
  nginx?: string
}

const MiB = 1024 * 1024
/** seconds `docker stop` gives an old slot's containers (after the drain, or at a warm window's end) */
const STOP_GRACE = 10
const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

export const slotProject = (project: string, slot: Slot): string => `${project}-${slot}`
export { upstreamName }

function upstreamFile(service: string, port: number, release?: SlotRelease): string {
  return (
    `# written by shipline (blue-green)${release ? `: release ${release.id} (${release.version})` : ''}\n` +
    nginxUpstream(service, [{ port, weight: 100 }])
  )
}

export class BlueGreen {
  readonly includeDir: string
  /** the proxy that routes the slots (nginx unless `proxy` says otherwise) */
  readonly proxy: ProxyAdapter
  constructor(
    readonly host: SlotHost,
    readonly cfg: BlueGreenConfig,
    readonly opts: { healthTimeout: number; stableSeconds?: number; stepTimeoutMs?: number } = {
      healthTimeout: 120
    }
  ) {
    this.includeDir = cfg.includeDir ?? `${host.layout.state}/nginx`
    this.proxy = makeAdapter(
      cfg.proxy ?? { name: 'nginx' },
      { remote: host.remote, label: host.label },
      {
        includeDir: this.includeDir,
        testCommand: cfg.testCommand,
        reloadCommand: cfg.reloadCommand,
        comment: 'blue-green canary'
      }
    )
  }

  /** the host port of a service in a slot */
  port(service: string, slot: Slot): number {
    return this.cfg.ports.get(service)![SLOTS.indexOf(slot)]
  }

  get services(): string[] {
    return [...this.cfg.ports.keys()]
  }

  private async run(what: string, argv: string[], stdin?: string) {
    const r = await this.host.remote.exec(argv, {
      timeoutMs: this.opts.stepTimeoutMs ?? 600_000,
      stdin
    })
    if (r.code !== 0) {
      const err = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n')
      throw new UserError(
        `${this.host.label}: ${what} failed (exit ${r.code}): ${err.split('\n').pop() ?? ''}`,
        err
      )
    }
    return r
  }

  /** The live slot and MemAvailable (bytes). */
  async probe(): Promise<Probe> {
    const r = await this.run('reading the live slot', SH(PROBE_SCRIPT, this.host.layout.state))
    const m = /^slot (\w+)(?: (\S+))?$/m.exec(r.stdout)
    const slot = m?.[1] as Slot | undefined
    const kb = /^memavail (\d+)$/m.exec(r.stdout)?.[1]
    return {
      slot: slot && SLOTS.includes(slot) ? slot : undefined,
      release: m?.[2],
      memAvailable: kb ? Number(kb) * 1024 : undefined
    }
  }

  /** argv prefix of `docker compose` for a release in a slot, with the slot's ports in the environment. */
  composeArgv(release: SlotRelease, slot: Slot): string[] {
    const i = SLOTS.indexOf(slot)
    const env = [`SHIPLINE_SLOT=${slot}`]
    const first = this.services[0]
    env.push(`SHIPLINE_PORT=${this.cfg.ports.get(first)![i]}`)
    for (const [svc, ports] of this.cfg.ports) env.push(`SHIPLINE_PORT_${envSuffix(svc)}=${ports[i]}`)
    const dir = this.host.layout.release(release.id)
    return [
      'env',
      ...env,
      ...composeArgv(
        this.host.compose,
        slotProject(this.host.layout.project, slot),
        dir,
        release.files,
        release.env ? ENV_FILE : undefined
      )
    ]
  }

  /** Bytes a second copy of the services needs: the sum of their memory limits, at least min-free-memory. */
  async needed(release: SlotRelease, slot: Slot): Promise<{ bytes: number; from: string }> {
    const r = await this.run('docker compose config', [...this.composeArgv(release, slot), 'config'])
    let doc: { services?: Record<string, unknown> } = {}
    try {
      doc = (parse(r.stdout) as typeof doc) ?? {}
    } catch {
      /* unreadable: fall back to the minimum */
    }
    let sum = 0
    const parts: string[] = []
    for (const s of this.services) {
      const lim = memoryLimit(doc.services?.[s])
      if (lim) {
        sum += lim
        parts.push(`${s} ${Math.round(lim / MiB)} MiB`)
      }
    }
    const min = this.cfg.minFreeMiB * MiB
    if (sum >= min) return { bytes: sum, from: `memory limits (${parts.join(', ')})` }
    return {
      bytes: min,
      from: parts.length
        ? `min-free-memory ${this.cfg.minFreeMiB} MiB (limits: ${parts.join(', ')})`
        : `min-free-memory ${this.cfg.minFreeMiB} MiB (no memory limit declared)`
    }
  }

  /** Removes the containers of the services in a slot (or another project), after `grace` seconds of stop. */
  async stop(project: string, grace = 10): Promise<string[]> {
    return this.stopWith(project, grace, SH(STOP_SCRIPT, String(grace), project, ...this.services))
  }

  /** Runs a stop script (STOP_SCRIPT, KEEP_SCRIPT): a failure is a warning; returns its `stopped …` lines. */
  private async stopWith(project: string, grace: number, argv: string[]): Promise<string[]> {
    const r = await this.host.remote.exec(argv, { timeoutMs: (grace + 120) * 1000 })
    if (r.code !== 0) this.host.log.warning(`${this.host.label}: stopping ${project}: ${r.stderr.trim()}`)
    return r.stdout.split('\n').filter(Boolean)
  }

  /**
   * Starts `release` in the idle slot and, once healthy, moves nginx to it; the old slot is drained and
   * stopped. On any failure before the reload, the old slot keeps serving and the idle one is removed.
   */
  async activate(release: SlotRelease): Promise<ActivateResult> {
    const started = await this.start(release)
    if ('ok' in started) return started
    return this.complete(started)
  }

  /**
   * The idle slot, its ports and the memory check, before anything starts (throws when the host lacks
   * the headroom for a second copy).
   */
  async plan(release: SlotRelease, probed?: Probe): Promise<SlotPlan> {
    const { host, cfg } = this
    const probe = probed ?? (await this.probe())
    const live = probe.slot
    const idle = otherSlot(live)
    const idx = SLOTS.indexOf(idle)
    const ports = Object.fromEntries([...cfg.ports].map(([s, p]) => [s, p[idx]]))
    // the release kept stopped in the idle slot (a rollback to the one live before): started again, its
    // memory checked on the host from its containers' own limits
    const wake = await this.run(
      'looking for kept containers',
      SH(
        WAKE_SCRIPT,
        host.layout.state,
        idle,
        release.id,
        String(cfg.minFreeMiB * MiB),
        slotProject(host.layout.project, idle),
        ...this.services
      )
    )
    const woken = /^woken( warm)?$/m.exec(wake.stdout)
    if (woken) {
      host.log.info(
        woken[1]
          ? `${host.label}: blue-green: ${release.version} was kept warm in ${idle}: still running`
          : `${host.label}: blue-green: ${release.version} was kept stopped in ${idle}: started again`
      )
      return { live, liveRelease: probe.release, idle, ports, wake: true }
    }
    // read again after the wake check, which stops a slot kept warm for another release
    const kb = /^memavail (\d+)$/m.exec(wake.stdout)?.[1]
    const memAvailable = kb ? Number(kb) * 1024 : probe.memAvailable
    const need = await this.needed(release, idle)
    if (memAvailable !== undefined && memAvailable < need.bytes) {
      throw new UserError(
        `${host.label}: not enough free memory for a second copy during the blue-green switch: ${Math.round(memAvailable / MiB)} MiB available, ${Math.round(need.bytes / MiB)} MiB needed by ${need.from}. Free memory on the host, lower 'min-free-memory' or the services' memory limits, or use 'strategy: recreate'.`
      )
    }
    host.log.info(
      `${host.label}: blue-green: live slot ${live ?? 'none'}, starting ${release.version} in ${idle} (${Object.entries(
        ports
      )
        .map(([s, p]) => `${s}:${p}`)
        .join(
          ', '
        )}); ${Math.round((memAvailable ?? 0) / MiB)} MiB free, ${Math.round(need.bytes / MiB)} MiB needed`
    )
    return { live, liveRelease: probe.release, idle, ports }
  }

  /** Phase 1: headroom check (unless planned already), then `up -d` of the release in the idle slot (nothing live changes). */
  async start(release: SlotRelease, planned?: SlotPlan): Promise<Started | ActivateResult> {
    const { live, liveRelease, idle, ports, wake } = planned ?? (await this.plan(release))
    const st: Started = { release, live, liveRelease, idle, ports }
    if (wake) return st
    try {
      await this.run(`starting ${release.id} in the ${idle} slot`, [
        ...this.composeArgv(release, idle),
        'up',
        '-d',
        '--no-deps',
        '--force-recreate',
        ...this.services
      ])
    } catch (e) {
      return this.fail(st, {
        ok: false,
        result: 'failed',
        state: errorMessage(e),
        logs: (e as UserError).details ?? ''
      })
    }
    return st
  }

  async fail(st: Started, h: HealthResult, nginx?: string): Promise<ActivateResult> {
    await this.stop(slotProject(this.host.layout.project, st.idle), 0)
    return { ...h, ok: false, slot: st.live, previousSlot: st.live, ports: st.ports, nginx }
  }

  /** Phase 2a: waits for the idle slot to be healthy; on failure its containers are removed. */
  async slotHealth(st: Started): Promise<ActivateResult | undefined> {
    const health = await composeHealth(
      (argv, o) => this.host.remote.exec(argv, o),
      slotProject(this.host.layout.project, st.idle),
      this.services,
      this.opts.healthTimeout,
      { stableSec: this.opts.stableSeconds }
    )
    if (!health.ok) return this.fail(st, health)
    this.host.log.info(`${this.host.label}: ${st.idle} slot healthy (${health.state})`)
    return undefined
  }

  /**
   * Phase 2b, as an argv: nginx to the idle slot (upstream files, test, reload; the old files go back when
   * either fails) and the live slot recorded. The release store runs it inside its close step, so the
   * switch of nginx and of `current` cannot be cut apart by a lost link.
   */
  switchArgv(st: Started): string[] {
    const files = this.services.flatMap(s => [`${s}.conf`, upstreamFile(s, st.ports[s], st.release)])
    return [
      'sh',
      '-c',
      NGINX_SWITCH_SCRIPT,
      'sh',
      this.includeDir,
      this.cfg.testCommand,
      this.cfg.reloadCommand,
      `${this.host.layout.state}/slot`,
      `${st.idle} ${st.release.id}`,
      ...files
    ]
  }

  /**
   * The cut-over as an argv for the close step, through the configured proxy: nginx as switchArgv();
   * haproxy and caddy through their adapter (planned now, against the routing the lock keeps unchanged),
   * then the live slot recorded.
   */
  async cutOverArgv(st: Started): Promise<string[]> {
    let argv: string[]
    if (this.proxy.name === 'nginx') argv = this.switchArgv(st)
    else {
      for (const s of this.services) this.proxy.setWeights(s, [{ port: st.ports[s], weight: 100 }])
      argv = [
        ...SH(PROXY_SWITCH_SCRIPT, `${this.host.layout.state}/slot`, `${st.idle} ${st.release.id}`),
        ...(await this.proxy.switchArgv())
      ]
    }
    return this.warm(st) ? this.warmArgv(st, argv) : argv
  }

  /** keep-previous-warm applies: a window is set and the old slot holds a known release */
  private warm(st: Started): st is Started & { live: Slot; liveRelease: string } {
    return (this.cfg.warmSeconds ?? 0) > 0 && !!st.live && !!st.liveRelease
  }

  /**
   * The cut-over wrapped by WARM_SCRIPT: once it succeeded, the old slot is recorded as kept warm and a
   * detached host-side timer (WARM_TIMER_SCRIPT) ends the window, all inside the close step, so a lost
   * runner cannot leave the old slot running without an end.
   */
  private warmArgv(st: Started & { live: Slot; liveRelease: string }, argv: string[]): string[] {
    const { layout } = this.host
    return [
      ...SH(
        WARM_SCRIPT,
        layout.state,
        st.live,
        st.liveRelease,
        randomBytes(8).toString('hex'),
        String(this.cfg.warmSeconds),
        String(STOP_GRACE),
        slotProject(layout.project, st.live),
        WARM_TIMER_SCRIPT,
        String(this.services.length),
        ...this.services
      ),
      ...argv
    ]
  }

  /** An argv that sends all traffic back to the live slot (after a canary step), through the proxy. */
  async resetArgv(st: Started & { live: Slot }): Promise<string[]> {
    for (const s of this.services) this.proxy.setWeights(s, [{ port: this.port(s, st.live), weight: 100 }])
    return this.proxy.switchArgv()
  }

  /**
   * Phase 3: drain, then stop the old slot (and containers a recreate deploy left in the main project). Kept
   * warm, the old slot runs on (its requests in flight finish there) and the timer armed in the close step
   * stops it at the window's end.
   */
  async drain(st: Started): Promise<string[]> {
    const { host, cfg } = this
    if (this.warm(st)) {
      host.log.info(
        `${host.label}: the ${st.live} slot (${st.liveRelease}) stays running for ${cfg.warmSeconds}s (keep-previous-warm): a rollback to it is a proxy switch`
      )
      return this.stop(host.layout.project)
    }
    await this.drainWait(`the ${st.live ?? 'previous'} containers`)
    return [
      ...(st.live ? await this.keep(st.live, st.liveRelease) : []),
      ...(await this.stop(host.layout.project))
    ]
  }

  /** Waits drain-seconds, so requests a slot took before the proxy moved away from it finish there. */
  async drainWait(what: string): Promise<void> {
    const s = this.cfg.drainSeconds
    if (s <= 0) return
    this.host.log.info(`${this.host.label}: draining ${what} for ${s}s`)
    await new Promise(r => setTimeout(r, s * 1000))
  }

  /** Stops the old slot and keeps its containers for a rollback (removed instead when its release is unknown). */
  async keep(slot: Slot, release: string | undefined): Promise<string[]> {
    const project = slotProject(this.host.layout.project, slot)
    if (!release) return this.stop(project)
    return this.stopWith(
      project,
      STOP_GRACE,
      SH(KEEP_SCRIPT, String(STOP_GRACE), this.host.layout.state, slot, release, project, ...this.services)
    )
  }

  /** Phases 2 and 3 run directly (not inside a release transaction). */
  async complete(st: Started): Promise<ActivateResult> {
    const bad = await this.slotHealth(st)
    if (bad) return bad
    let argv: string[]
    try {
      argv = await this.cutOverArgv(st)
    } catch (e) {
      const why = errorMessage(e)
      return this.fail(st, { ok: false, result: 'proxy', state: why, logs: '' }, why)
    }
    const r = await this.host.remote.exec(argv, { timeoutMs: 120_000 })
    if (r.code !== 0) {
      const why = failureLine(r)
      return this.fail(
        st,
        {
          ok: false,
          result: this.proxy.name !== 'nginx' ? 'proxy' : r.code === 11 ? 'nginx-test' : 'nginx-reload',
          state: why,
          logs: ''
        },
        why
      )
    }
    this.host.log.info(
      `${this.host.label}: ${this.proxy.name} now sends ${this.services.map(upstreamName).join(', ')} to the ${st.idle} slot`
    )
    const stopped = await this.drain(st)
    if (stopped.length) this.host.log.info(`${this.host.label}: ${stopped.join(', ')}`)
    return {
      ok: true,
      result: 'healthy',
      state: `${st.idle} slot live`,
      logs: '',
      slot: st.idle,
      previousSlot: st.live,
      ports: st.ports
    }
  }

  /** Removes a started slot's containers (the release it held did not go live). */
  async discard(st: Started): Promise<void> {
    await this.stop(slotProject(this.host.layout.project, st.idle), 0)
  }
}

/** What probe() reads on the host: the live slot, the release it holds, MemAvailable (bytes). */
export interface Probe {
  slot?: Slot
  release?: string
  memAvailable?: number
}

/** Where a release will start: the live and idle slots, the idle slot's ports. */
export interface SlotPlan {
  live?: Slot
  /** the release the live slot holds (from the slot file) */
  liveRelease?: string
  idle: Slot
  ports: Record<string, number>
  /** the idle slot's kept containers hold the release: they are started again, not created */
  wake?: boolean
}

/** A release started in the idle slot, not yet taking traffic. */
export interface Started {
  release: SlotRelease
  live?: Slot
  liveRelease?: string
  idle: Slot
  ports: Record<string, number>
}

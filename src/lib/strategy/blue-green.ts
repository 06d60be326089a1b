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
 *   → drain: the old slot keeps running for drain-seconds, then it is stopped.
 *
 * Until the reload, nothing the old slot serves changes: any failure before it leaves the old slot serving
 * and removes the idle slot's containers. The user's nginx.conf includes the files and proxies to
 * `shipline_<service>`; nginx's graceful reload lets its old workers finish their requests.
 */
import { parse } from 'yaml'
import { UserError, errorMessage } from '../errors.js'
import type { Remote } from '../ssh/remote.js'
import { ComposeHost, type HealthResult, type Logger, type ReleaseMeta } from '../compose/host.js'
import { composeArgv, ENV_FILE, type ComposeKind, type Layout } from '../compose/layout.js'
import { PROBE_SCRIPT, STOP_SCRIPT, USER_COMMAND } from './scripts.js'
import { envSuffix, memoryLimit, otherSlot, SLOTS, type BlueGreenConfig, type Slot } from './options.js'

/** What blue-green needs of a compose host (a ComposeHost fits). */
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
const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

export const slotProject = (project: string, slot: Slot): string => `${project}-${slot}`
export const upstreamName = (service: string): string => `shipline_${service.replace(/[^A-Za-z0-9_]/g, '_')}`

export function upstreamFile(service: string, port: number, release?: SlotRelease): string {
  return (
    `# written by shipline (blue-green)${release ? `: release ${release.id} (${release.version})` : ''}\n` +
    `upstream ${upstreamName(service)} {\n  server 127.0.0.1:${port};\n}\n`
  )
}

export class BlueGreen {
  readonly includeDir: string
  constructor(
    readonly host: SlotHost,
    readonly cfg: BlueGreenConfig,
    readonly opts: { healthTimeout: number; stableSeconds?: number; stepTimeoutMs?: number } = {
      healthTimeout: 120
    }
  ) {
    this.includeDir = cfg.includeDir ?? `${host.layout.state}/nginx`
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
  async probe(): Promise<{ slot?: Slot; release?: string; memAvailable?: number }> {
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
    const r = await this.host.remote.exec(SH(STOP_SCRIPT, String(grace), project, ...this.services), {
      timeoutMs: (grace + 120) * 1000
    })
    if (r.code !== 0) this.host.log.warning(`${this.host.label}: stopping ${project}: ${r.stderr.trim()}`)
    return r.stdout.split('\n').filter(Boolean)
  }

  private async readOld(): Promise<Map<string, string | undefined>> {
    const old = new Map<string, string | undefined>()
    for (const s of this.services) {
      try {
        old.set(s, (await this.host.remote.readFile(`${this.includeDir}/${s}.conf`)).toString('utf8'))
      } catch {
        old.set(s, undefined)
      }
    }
    return old
  }

  private async writeUpstreams(files: Map<string, string | undefined>): Promise<void> {
    for (const [s, text] of files) {
      const p = `${this.includeDir}/${s}.conf`
      if (text === undefined) await this.host.remote.exec(['rm', '-f', p])
      else await this.host.remote.writeFile(p, text, 0o644)
    }
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

  /** Phase 1: headroom check, then `up -d` of the release in the idle slot (nothing live changes). */
  async start(release: SlotRelease): Promise<Started | ActivateResult> {
    const { host, cfg } = this
    const probe = await this.probe()
    const live = probe.slot
    const idle = otherSlot(live)
    const idx = SLOTS.indexOf(idle)
    const ports = Object.fromEntries([...cfg.ports].map(([s, p]) => [s, p[idx]]))
    const need = await this.needed(release, idle)
    if (probe.memAvailable !== undefined && probe.memAvailable < need.bytes) {
      throw new UserError(
        `${host.label}: not enough free memory for a second copy during the blue-green switch: ${Math.round(probe.memAvailable / MiB)} MiB available, ${Math.round(need.bytes / MiB)} MiB needed by ${need.from}. Free memory on the host, lower 'min-free-memory' or the services' memory limits, or use 'strategy: recreate'.`
      )
    }
    host.log.info(
      `${host.label}: blue-green: live slot ${live ?? 'none'}, starting ${release.version} in ${idle} (${Object.entries(
        ports
      )
        .map(([s, p]) => `${s}:${p}`)
        .join(
          ', '
        )}); ${Math.round((probe.memAvailable ?? 0) / MiB)} MiB free, ${Math.round(need.bytes / MiB)} MiB needed`
    )
    const st: Started = { release, live, idle, ports }
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

  private async fail(st: Started, h: HealthResult, nginx?: string): Promise<ActivateResult> {
    await this.stop(slotProject(this.host.layout.project, st.idle), 0)
    return { ...h, ok: false, slot: st.live, previousSlot: st.live, ports: st.ports, nginx }
  }

  /** Phase 2: wait for the idle slot to be healthy, switch nginx to it, drain and stop the old slot. */
  async complete(st: Started): Promise<ActivateResult> {
    const { host, cfg } = this
    const { release, live, idle, ports } = st
    const log = (m: string): void => host.log.info(`${host.label}: ${m}`)
    const idleProject = slotProject(host.layout.project, idle)
    const slotHost = new ComposeHost(host.remote, {
      path: host.layout.path,
      project: idleProject,
      log: host.log
    })
    const health = await slotHost.waitHealthy(this.services, this.opts.healthTimeout, {
      stableSec: this.opts.stableSeconds
    })
    if (!health.ok) return this.fail(st, health)
    log(`${idle} slot healthy (${health.state})`)

    // nginx: new upstream files, test, reload (the old files go back when either fails)
    const old = await this.readOld()
    await this.run('creating the nginx include directory', ['mkdir', '-p', this.includeDir])
    await this.writeUpstreams(new Map(this.services.map(s => [s, upstreamFile(s, ports[s], release)])))
    const t = await host.remote.exec(USER_COMMAND(cfg.testCommand), { timeoutMs: 60_000 })
    if (t.code !== 0) {
      await this.writeUpstreams(old)
      const out = (t.stderr + t.stdout).trim()
      return this.fail(
        st,
        { ...health, ok: false, result: 'nginx-test' },
        `'${cfg.testCommand}' failed: ${out.split('\n').pop()}`
      )
    }
    const rl = await host.remote.exec(USER_COMMAND(cfg.reloadCommand), { timeoutMs: 60_000 })
    if (rl.code !== 0) {
      await this.writeUpstreams(old)
      await host.remote.exec(USER_COMMAND(cfg.reloadCommand), { timeoutMs: 60_000 })
      const out = (rl.stderr + rl.stdout).trim()
      return this.fail(
        st,
        { ...health, ok: false, result: 'nginx-reload' },
        `'${cfg.reloadCommand}' failed: ${out.split('\n').pop()}`
      )
    }
    await host.remote.writeFile(`${host.layout.state}/slot`, `${idle} ${release.id}\n`, 0o644)
    log(`nginx now sends ${this.services.map(upstreamName).join(', ')} to the ${idle} slot`)

    // drain and stop the old slot (and containers a recreate deploy left in the main project)
    if (cfg.drainSeconds > 0) {
      log(`draining the ${live ?? 'previous'} containers for ${cfg.drainSeconds}s`)
      await new Promise(r => setTimeout(r, cfg.drainSeconds * 1000))
    }
    const stopped = [
      ...(live ? await this.stop(slotProject(host.layout.project, live)) : []),
      ...(await this.stop(host.layout.project))
    ]
    if (stopped.length) log(stopped.join(', '))
    return { ...health, ok: true, slot: idle, previousSlot: live, ports }
  }
}

/** A release started in the idle slot, not yet taking traffic. */
export interface Started {
  release: SlotRelease
  live?: Slot
  idle: Slot
  ports: Record<string, number>
}

/** The nginx include lines a user's config needs, for docs and the job summary. */
export function nginxSnippet(includeDir: string, services: string[]): string {
  return [
    `# in the http {} block of nginx.conf:`,
    `include ${includeDir}/*.conf;`,
    ...services.map(s => `# in a location: proxy_pass http://${upstreamName(s)};`)
  ].join('\n')
}

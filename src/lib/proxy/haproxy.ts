/**
 * haproxy: the runtime API over the admin socket (`stats socket <path> level admin`), no reload, so no
 * connection is lost. Each service is a backend `shipline_<service>` with two server slots (`s0`, `s1`)
 * that the user declares once; apply() moves ports onto the slots and sets their weights and states:
 *
 *   set server <backend>/<slot> addr 127.0.0.1 port <port>    (a slot taking a new port, not serving)
 *   set server <backend>/<slot> weight <w>; … state ready      (the serving slots first)
 *   set server <backend>/<slot> weight 0;   … state drain      (then the ones leaving: they finish)
 *
 * and reads back with `show servers state <backend>`. The commands stop at the first refusal, and the
 * slots' previous address, weight and state are put back. The socket is on the host; the commands go
 * through the Remote to curl there (HAPROXY_SCRIPT), each bounded by a timeout.
 */
import { UserError, errorMessage } from '../errors.js'
import { HAPROXY_SCRIPT } from './scripts.js'
import {
  StagedAdapter,
  upstreamName,
  type AdapterHost,
  type Backend,
  type BackendState,
  type BackendStateName
} from './types.js'

export interface HaproxyAdapterOptions {
  /** the admin socket on the host (`stats socket <path> level admin`) */
  socket: string
  /** the two server names of each backend (default s0, s1) */
  servers?: [string, string]
  /** when set, `show servers state` is saved here after each apply (haproxy's `server-state-file`) */
  stateFile?: string
  /** bound of each remote call (default 30 s; each socket command at most 10 s) */
  timeoutMs?: number
}

/** One server slot as `show servers state` reports it. */
export interface HaproxySlot extends BackendState {
  server: string
  addr: string
  /** the weight set by config or `set server … weight` (kept while draining or in maintenance) */
  uweight: number
}

// srv_admin_state bits (haproxy's enum srv_admin): FMAINT 0x01, IMAINT 0x02, CMAINT 0x04, FDRAIN 0x08,
// IDRAIN 0x10, RMAINT 0x20, HMAINT 0x40; srv_op_state: 0 stopped, 1 starting, 2 running, 3 stopping.
// CMAINT only records `disabled` in the config: it stays after `state ready`, which serves (measured, 2.6)
const MAINT = 0x01 | 0x02 | 0x20 | 0x40
const DRAIN = 0x08 | 0x10

/** The slots of a backend in `show servers state <backend>` output (header names the columns). */
export function parseServersState(text: string): HaproxySlot[] {
  const lines = text.split('\n')
  const header = lines.find(l => l.startsWith('# be_id'))
  if (!header) return []
  const cols = header.slice(2).trim().split(/\s+/)
  const at = (f: string[], c: string): string => f[cols.indexOf(c)] ?? ''
  const out: HaproxySlot[] = []
  for (const l of lines) {
    if (!/^\d+ /.test(l)) continue
    const f = l.trim().split(/\s+/)
    const admin = Number(at(f, 'srv_admin_state'))
    const op = Number(at(f, 'srv_op_state'))
    const state: BackendStateName =
      admin & MAINT ? 'maint' : admin & DRAIN ? 'drain' : op === 2 ? 'ready' : 'down'
    const uweight = Number(at(f, 'srv_uweight'))
    out.push({
      server: at(f, 'srv_name'),
      addr: at(f, 'srv_addr'),
      port: Number(at(f, 'srv_port')),
      weight: state === 'ready' ? uweight : 0,
      state,
      uweight
    })
  }
  return out
}

/** Which slot takes which backend: a port keeps its slot; a new port goes to a slot that does not serve. */
export function assignSlots(slots: HaproxySlot[], backends: Backend[]): Map<string, Backend> {
  const out = new Map<string, Backend>()
  const rest: Backend[] = []
  for (const b of backends) {
    const s = slots.find(x => x.port === b.port && !out.has(x.server))
    if (s) out.set(s.server, b)
    else rest.push(b)
  }
  const free = slots
    .filter(s => !out.has(s.server))
    .sort((a, b) => Number(a.state === 'ready' && a.weight > 0) - Number(b.state === 'ready' && b.weight > 0))
  for (const b of rest) {
    const s = free.shift()
    if (!s) throw new UserError(`haproxy: more backends than server slots (${slots.length}).`)
    out.set(s.server, b)
  }
  return out
}

/** The commands that set `target` slots (server → backend), serving ones first. */
export function slotCommands(backend: string, slots: HaproxySlot[], target: Map<string, Backend>): string[] {
  const up: string[] = []
  const down: string[] = []
  for (const s of slots) {
    const b = target.get(s.server)
    const srv = `${backend}/${s.server}`
    const cmds: string[] = []
    if (b && b.port !== s.port) cmds.push(`set server ${srv} addr 127.0.0.1 port ${b.port}`)
    const w = b?.weight ?? 0
    cmds.push(`set server ${srv} weight ${w}`, `set server ${srv} state ${w > 0 ? 'ready' : 'drain'}`)
    ;(w > 0 ? up : down).push(...cmds)
  }
  return [...up, ...down]
}

/** The commands that put slots back as they were (address, weight, state). */
function restoreCommands(backend: string, slots: HaproxySlot[]): string[] {
  const first = (s: HaproxySlot): number => (s.state === 'ready' ? 0 : 1)
  return [...slots]
    .sort((a, b) => first(a) - first(b))
    .flatMap(s => {
      const srv = `${backend}/${s.server}`
      return [
        `set server ${srv} addr ${s.addr} port ${s.port}`,
        `set server ${srv} weight ${s.uweight}`,
        `set server ${srv} state ${s.state === 'down' ? 'ready' : s.state}`
      ]
    })
}

export class HaproxyAdapter extends StagedAdapter {
  readonly name = 'haproxy' as const
  readonly servers: [string, string]

  constructor(
    host: AdapterHost,
    readonly opts: HaproxyAdapterOptions
  ) {
    super(host)
    this.servers = opts.servers ?? ['s0', 's1']
    for (const p of [opts.socket, opts.stateFile])
      if (p !== undefined && !/^\/[A-Za-z0-9._/@+-]*$/.test(p))
        throw new UserError(`haproxy: '${p}' must be an absolute path of plain characters.`)
  }

  private async script(mode: 'show' | 'set', cmds: string[]): Promise<{ code: number; out: string }> {
    const sf = mode === 'set' ? (this.opts.stateFile ?? '') : ''
    const argv = ['sh', '-c', HAPROXY_SCRIPT, 'sh', this.opts.socket, '10', mode, sf, ...cmds]
    try {
      const r = await this.host.remote.exec(argv, { timeoutMs: this.opts.timeoutMs ?? 30_000 })
      return { code: r.code, out: r.stdout + (r.code === 0 ? '' : r.stderr) }
    } catch (e) {
      return { code: -1, out: `ERR ${errorMessage(e)}` }
    }
  }

  /** the slots of a service's backend; throws a UserError naming the haproxy.cfg fix */
  async slots(service: string): Promise<HaproxySlot[]> {
    const backend = upstreamName(service)
    const r = await this.script('show', [`show servers state ${backend}`])
    if (r.code !== 0)
      throw new UserError(
        `${this.host.label}: haproxy: reading backend ${backend} failed: ${/^ERR (.*)$/m.exec(r.out)?.[1] ?? r.out.trim()}`
      )
    if (/Can't find backend/.test(r.out))
      throw new UserError(
        `${this.host.label}: haproxy has no backend ${backend}. Declare it in haproxy.cfg with two servers '${this.servers.join("', '")}' (docs/strategies.md, Proxy adapters).`
      )
    const slots = parseServersState(r.out)
    const missing = this.servers.filter(s => !slots.some(x => x.server === s))
    if (missing.length)
      throw new UserError(
        `${this.host.label}: haproxy backend ${backend} has no server ${missing.join(', ')}. Declare 'server ${this.servers[0]} 127.0.0.1:<port>' and 'server ${this.servers[1]} 127.0.0.1:<port> disabled' in it.`
      )
    return slots.filter(s => this.servers.includes(s.server))
  }

  /** the staged services, their slots now and the commands that change them (nothing is sent) */
  private async plan(): Promise<{ backend: string; before: HaproxySlot[]; cmds: string[] }[]> {
    const out = []
    for (const [service, backends] of this.stagedOrThrow()) {
      const before = await this.slots(service)
      const backend = upstreamName(service)
      out.push({ backend, before, cmds: slotCommands(backend, before, assignSlots(before, backends)) })
    }
    return out
  }

  async test(): Promise<void> {
    const r = await this.script('show', ['show cli level'])
    if (r.code !== 0 || !/^admin$/m.test(r.out))
      throw this.failed(
        `haproxy's socket ${this.opts.socket} does not give admin level (${r.out.trim().split('\n').pop() ?? ''})`,
        true,
        `Declare 'stats socket ${this.opts.socket} mode 660 level admin' in haproxy.cfg.`
      )
    await this.plan()
  }

  async apply(): Promise<void> {
    const plan = await this.plan()
    const r = await this.script(
      'set',
      plan.flatMap(p => p.cmds)
    )
    if (r.code === 0) {
      this.staged.clear()
      return
    }
    const why = /^ERR (.*)$/m.exec(r.out)?.[1] ?? `exit ${r.code}`
    const back = await this.script(
      'set',
      plan.flatMap(p => restoreCommands(p.backend, p.before))
    )
    const restored = back.code === 0
    throw this.failed(
      `haproxy refused ${why}`,
      restored,
      `Check the backend's servers and 'balance' (weights need a dynamic algorithm such as roundrobin).`,
      r.out + (restored ? '' : `\nput back: ${back.out}`)
    )
  }

  async switchArgv(): Promise<string[]> {
    const plan = await this.plan()
    this.staged.clear()
    const sf = this.opts.stateFile ?? ''
    return [
      'sh',
      '-c',
      HAPROXY_SCRIPT,
      'sh',
      this.opts.socket,
      '10',
      'set',
      sf,
      ...plan.flatMap(p => p.cmds),
      '--undo',
      ...plan.flatMap(p => restoreCommands(p.backend, p.before))
    ]
  }

  async readBack(service: string): Promise<BackendState[]> {
    return (await this.slots(service)).map(({ port, weight, state }) => ({ port, weight, state }))
  }
}

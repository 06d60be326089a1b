/**
 * One project path on one host, driven through a Remote: the lock (with the state probe), uploads of a
 * release, images, `up`, health, the current pointer, the ledger, pruning. Knows nothing of GitHub.
 */
import { randomBytes } from 'node:crypto'
import { UserError } from '../errors.js'
import { shellJoin, type Remote, type RemoteResult } from '../ssh/remote.js'
import { composeArgv, ENV_FILE, layout, META_FILE, type ComposeKind, type Layout } from './layout.js'
import {
  FINISH_SCRIPT,
  HEALTH_SCRIPT,
  IMAGES_SCRIPT,
  LEDGER_SCRIPT,
  LOCK_SCRIPT,
  STEP_SCRIPT,
  SWITCH_SCRIPT,
  UPLOAD_SCRIPT
} from './scripts.js'
import { tar, type TarEntry } from './tar.js'
import { RELEASE_ID_RE } from './validate.js'

export interface Logger {
  info(msg: string): void
  warning(msg: string): void
}

/** release.json */
export interface ReleaseMeta {
  id: string
  version: string
  /** commit the release was made from, when known */
  sha?: string
  time: string
  actor?: string
  runUrl?: string
  /** compose files in the release folder, in -f order (the override last) */
  files: string[]
  env: boolean
  /** service → image@sha256:… pinned by the override */
  images: Record<string, string>
  /** every service of the compose files */
  services: string[]
  /** the services this release updated (health-gated) */
  updated: string[]
}

export type LedgerEvent = 'deploy' | 'rollback' | 'failed' | 'auto-rollback' | 'revert' | 'recovered'

export interface LedgerEntry {
  time: string
  event: LedgerEvent
  /** the release live after this event */
  release: string
  version?: string
  /** the release that was live before `release` (what a default rollback goes back to) */
  from?: string
  fromVersion?: string
  /** for failed / auto-rollback / revert: the release that was tried and given up */
  attempted?: string
  actor?: string
  runUrl?: string
  images?: Record<string, string>
  reason?: string
}

export interface HostState {
  compose: ComposeKind | 'none'
  current?: string
  releases: Map<string, ReleaseMeta>
  ledger: LedgerEntry[]
}

export interface HealthResult {
  ok: boolean
  /** healthy, failed, timeout */
  result: string
  /** the last state line */
  state: string
  /** failing services with the last log lines of their containers */
  logs: string
}

export interface ComposeHostOptions {
  path: string
  project?: string
  log: Logger
  /** limit for one ordinary step on the host (default 10 min) */
  stepTimeoutMs?: number
}

const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

export class ComposeHost {
  readonly remote: Remote
  readonly layout: Layout
  readonly token = randomBytes(8).toString('hex')
  readonly log: Logger
  private holder?: Promise<RemoteResult>
  private stepTimeoutMs: number
  /** exec calls made (round trips), for the benchmark */
  execs = 0
  compose: ComposeKind = 'v1'
  /** false for hosts that deploy without Compose (a swarm manager, src/lib/swarm) */
  protected requiresCompose = true

  constructor(remote: Remote, opts: ComposeHostOptions) {
    this.remote = remote
    this.layout = layout(opts.path, opts.project)
    this.log = opts.log
    this.stepTimeoutMs = opts.stepTimeoutMs ?? 600_000
  }

  get label(): string {
    return this.remote.label
  }

  get runDir(): string {
    return `${this.layout.run}/${this.token}`
  }

  private async exec(argv: string[], opts: Parameters<Remote['exec']>[1] = {}): Promise<RemoteResult> {
    this.execs++
    return this.remote.exec(argv, { timeoutMs: this.stepTimeoutMs, ...opts })
  }

  private async check(
    what: string,
    argv: string[],
    opts: Parameters<Remote['exec']>[1] = {}
  ): Promise<RemoteResult> {
    const r = await this.exec(argv, opts)
    if (r.code !== 0) {
      const err = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n')
      throw new UserError(
        `${this.label}: ${what} failed (exit ${r.code}): ${err.split('\n').pop() ?? ''}`,
        err
      )
    }
    return r
  }

  /**
   * Takes the host lock (waiting up to timeoutSec) and reads the state under it. The lock is held by a
   * remote process until release() or until the connection dies.
   */
  async lock(timeoutSec: number, owner: string): Promise<HostState> {
    let out = ''
    let settled = false
    let waitingSaid = false
    this.execs++
    return new Promise<HostState>((resolve, reject) => {
      const onData = (chunk: string): void => {
        if (settled) return
        out += chunk
        if (!waitingSaid && /^WAITING(.*)$/m.test(out)) {
          waitingSaid = true
          const who = /^WAITING(.*)$/m.exec(out)?.[1]?.trim()
          this.log.info(
            `${this.label}: another deploy holds the lock on ${this.layout.path}${who ? ` (${who})` : ''}; waiting up to ${timeoutSec}s`
          )
        }
        if (/^READY$/m.test(out)) {
          settled = true
          try {
            resolve(parseState(out))
          } catch (e) {
            reject(e)
          }
        }
      }
      this.holder = this.remote.exec(
        SH(LOCK_SCRIPT, this.layout.state, String(timeoutSec), this.token, owner.slice(0, 300)),
        {
          onStdout: onData
        }
      )
      this.holder.then(
        r => {
          if (settled) return
          settled = true
          const text = (r.stdout + '\n' + r.stderr).trim()
          if (/ERR timeout/.test(text)) {
            reject(
              new UserError(
                `${this.label}: another deploy or rollback held the lock on ${this.layout.path} for more than lock-timeout (${timeoutSec}s). Wait for it, or raise 'lock-timeout'.`
              )
            )
          } else {
            const err = /ERR (.*)/.exec(text)?.[1] ?? text.split('\n').pop()
            reject(
              new UserError(`${this.label}: could not take the lock on ${this.layout.path}: ${err}`, text)
            )
          }
        },
        e => {
          if (settled) return
          settled = true
          reject(e)
        }
      )
    }).then(state => {
      if (state.compose === 'none' && this.requiresCompose) {
        throw new UserError(
          `${this.label}: neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed on the host. Install the Compose plugin.`
        )
      }
      if (state.compose !== 'none') this.compose = state.compose
      return state
    })
  }

  /** Lets the lock go: removes the recovery script, prunes, and waits for the holder to exit. */
  async finish(prune: { releases?: string[]; images?: string[] } = {}): Promise<string[]> {
    if (!this.holder) return []
    const rel = (prune.releases ?? []).filter(id => RELEASE_ID_RE.test(id))
    const r = await this.exec(
      SH(FINISH_SCRIPT, this.layout.state, this.token, ...rel, '--images', ...(prune.images ?? []))
    )
    const holder = this.holder
    this.holder = undefined
    await holder
    return r.stdout.split('\n').filter(Boolean)
  }

  composeFor(meta: ReleaseMeta): string[] {
    const dir = this.layout.release(meta.id)
    return composeArgv(this.compose, this.layout.project, dir, meta.files, meta.env ? ENV_FILE : undefined)
  }

  /**
   * Writes a release folder in one round trip: compose files, override, .env (0600) and release.json
   * (last: it marks the folder complete) as a tar on stdin; without a new .env the previous one is copied
   * on the host (it never travels again).
   */
  async upload(
    meta: ReleaseMeta,
    files: { name: string; data: string }[],
    env: string | undefined,
    copyEnvFrom?: string
  ): Promise<void> {
    const dir = this.layout.release(meta.id)
    const entries: TarEntry[] = files.map(f => ({ name: f.name, data: f.data, mode: 0o644 }))
    if (env !== undefined) entries.push({ name: ENV_FILE, data: env, mode: 0o600 })
    entries.push({ name: META_FILE, data: JSON.stringify(meta) + '\n', mode: 0o644 })
    const from = env === undefined && copyEnvFrom ? `${this.layout.release(copyEnvFrom)}/${ENV_FILE}` : ''
    await this.check('uploading the release', SH(UPLOAD_SCRIPT, dir, from), { stdin: tar(entries) })
  }

  /** Images present stay; missing ones are pulled (login in a temporary config when a registry is given). */
  async ensureImages(
    refs: string[],
    auth?: { registry: string; username: string; password: string }
  ): Promise<string[]> {
    if (refs.length === 0) return []
    const cfg = `${this.runDir}/docker-config`
    // pulls of big images over a slow link may take long: 30 min, not the ordinary step limit
    const r = await this.exec(SH(IMAGES_SCRIPT, cfg, auth?.registry ?? '', auth?.username ?? '', ...refs), {
      stdin: auth?.password ?? '',
      timeoutMs: Math.max(this.stepTimeoutMs, 1_800_000)
    })
    const pulled = r.stdout
      .split('\n')
      .filter(l => l.startsWith('pull '))
      .map(l => l.slice(5))
    if (r.code !== 0) {
      const msg = /ERR (.*)/.exec(r.stdout)?.[1] ?? `exit ${r.code}`
      const hint = auth
        ? 'Check registry-username/registry-password and that the image exists.'
        : "Set 'registry', 'registry-username' and 'registry-password' so the host can pull it."
      throw new UserError(`${this.label}: ${msg}. ${hint}`, (r.stdout + r.stderr).trim())
    }
    return pulled
  }

  /** `up -d` of a release (all services with --remove-orphans, or only `services` with --no-deps). */
  async up(meta: ReleaseMeta, services: string[] | undefined, recoverScript: string): Promise<void> {
    const argv = [...this.composeFor(meta), 'up', '-d']
    if (services && services.length) argv.push('--no-deps', ...services)
    else argv.push('--remove-orphans')
    await this.check(
      `docker ${this.compose === 'v2' ? 'compose' : '-compose'} up of ${meta.id}`,
      SH(STEP_SCRIPT, this.runDir, ...argv),
      {
        stdin: recoverScript
      }
    )
  }

  async waitHealthy(
    services: string[],
    timeoutSec: number,
    opts: { stableSec?: number; tail?: number } = {}
  ): Promise<HealthResult> {
    const r = await this.exec(
      SH(
        HEALTH_SCRIPT,
        String(timeoutSec),
        String(opts.stableSec ?? 5),
        this.layout.project,
        String(opts.tail ?? 30),
        ...services
      ),
      { timeoutMs: (timeoutSec + 60) * 1000 }
    )
    return parseHealth(r)
  }

  /** Atomically points `current` at a release and appends the ledger line. */
  async switchCurrent(id: string, entry: LedgerEntry): Promise<void> {
    await this.check('switching the current release', SH(SWITCH_SCRIPT, this.layout.state, id), {
      stdin: JSON.stringify(entry) + '\n'
    })
  }

  async appendLedger(entry: LedgerEntry): Promise<void> {
    await this.check('appending to the ledger', SH(LEDGER_SCRIPT, this.layout.state), {
      stdin: JSON.stringify(entry) + '\n'
    })
  }

  /**
   * recover.sh for the window in which the host runs something else than `current` says: brings `meta`
   * back, points current at it and records it, should the connection die before the deploy finishes.
   */
  recoverScript(meta: ReleaseMeta, from: string | undefined, attempted: string): string {
    const up = [...this.composeFor(meta), 'up', '-d', '--remove-orphans']
    const entry = JSON.stringify({
      event: 'recovered',
      release: meta.id,
      version: meta.version,
      from,
      attempted,
      reason: 'the deploy connection was lost'
    })
    return [
      '# shipline: run by the lock holder when the deploy connection dies before the deploy finished',
      shellJoin(up),
      shellJoin(['ln', '-sfn', `releases/${meta.id}`, `${this.layout.state}/current.tmp`]) +
        ' && ' +
        shellJoin(['mv', '-fT', `${this.layout.state}/current.tmp`, this.layout.current]),
      `printf '{"time":"%s",%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${shellJoin([entry.slice(1)])} >> ${shellJoin([this.layout.ledger])}`,
      ''
    ].join('\n')
  }
}

/** Reads a health wait's output: `state …` lines, then `result <word> …`, then the failing containers' logs. */
export function parseHealth(r: RemoteResult): HealthResult {
  const lines = r.stdout.split('\n')
  const state = [...lines].reverse().find(l => l.startsWith('state ')) ?? ''
  const i = lines.findIndex(l => l.startsWith('result '))
  const result = i >= 0 ? lines[i].split(' ')[1] : `exit ${r.code}`
  const logs =
    i >= 0
      ? lines
          .slice(i + 1)
          .join('\n')
          .trim()
      : r.stderr.trim()
  return { ok: r.code === 0 && result === 'healthy', result, state: state.slice(6).trim(), logs }
}

/** Parses the lock script's output between LOCKED and READY. */
export function parseState(out: string): HostState {
  const state: HostState = { compose: 'none', releases: new Map(), ledger: [] }
  const start = out.indexOf('LOCKED\n')
  for (const line of out.slice(start + 7).split('\n')) {
    if (line === 'READY') break
    const sp = line.indexOf(' ')
    const key = sp < 0 ? line : line.slice(0, sp)
    const rest = sp < 0 ? '' : line.slice(sp + 1)
    if (key === 'compose') state.compose = rest as HostState['compose']
    else if (key === 'current') state.current = rest.trim() || undefined
    else if (key === 'release') {
      const sp2 = rest.indexOf(' ')
      try {
        const meta = JSON.parse(rest.slice(sp2 + 1)) as ReleaseMeta
        state.releases.set(rest.slice(0, sp2), meta)
      } catch {
        /* a damaged release.json: that release cannot be used */
      }
    } else if (key === 'ledger') {
      try {
        state.ledger.push(JSON.parse(rest) as LedgerEntry)
      } catch {
        /* a torn line */
      }
    }
  }
  return state
}

/** The release that was live before the current one, from the ledger (else the newest older release). */
export function previousRelease(state: HostState): string | undefined {
  const cur = state.current
  if (!cur) return undefined
  for (let i = state.ledger.length - 1; i >= 0; i--) {
    const e = state.ledger[i]
    if (e.release === cur && e.event !== 'failed') {
      if (e.from && state.releases.has(e.from)) return e.from
      break
    }
  }
  return [...state.releases.keys()]
    .filter(id => id < cur)
    .sort()
    .pop()
}

/** Release ids and image refs to remove so that `keep` releases stay (current and its predecessor always). */
export function prunePlan(
  state: HostState,
  current: string,
  keep: number
): { releases: string[]; images: string[] } {
  const ids = [...state.releases.keys()].sort().reverse()
  const keepSet = new Set<string>([current])
  const prev = previousRelease({ ...state, current })
  if (prev) keepSet.add(prev)
  for (const id of ids) {
    if (keepSet.size >= keep) break
    keepSet.add(id)
  }
  const drop = ids.filter(id => !keepSet.has(id))
  const needed = new Set<string>()
  for (const id of keepSet)
    for (const ref of Object.values(state.releases.get(id)?.images ?? {})) needed.add(ref)
  const images = new Set<string>()
  for (const id of drop)
    for (const ref of Object.values(state.releases.get(id)?.images ?? {}))
      if (!needed.has(ref)) images.add(ref)
  return { releases: drop, images: [...images] }
}

/**
 * ReleaseStore: what keeps releases on one host under one project path, over a Remote. The lock (with
 * the state read), release folders, the journal (ledger.jsonl), the `current` pointer, pruning, and the
 * recovery the lock holder runs when the runner goes away. It knows nothing of Compose, swarm or nginx:
 * a Runtime (src/lib/runtime) starts containers; the store only runs the runtime's commands under its
 * step lock with the recovery armed, and the runtime's cut-over inside its close step.
 *
 * Layout on the host: src/lib/compose/layout.ts. The journal: ./journal.ts.
 */
import { randomBytes } from 'node:crypto'
import { UserError } from '../errors.js'
import { shellJoin, type ExecOptions, type Remote, type RemoteResult } from '../ssh/remote.js'
import { ENV_FILE, layout, META_FILE, type ComposeKind, type Layout } from '../compose/layout.js'
import { tar, type TarEntry } from '../compose/tar.js'
import { RELEASE_ID_RE } from '../compose/validate.js'
import { parseJournal, openTransaction, type JournalEntry } from './journal.js'
import {
  APPEND_SCRIPT,
  BEGIN_SCRIPT,
  CLOSE_SCRIPT,
  FINISH_SCRIPT,
  LOCK_SCRIPT,
  STEP_SCRIPT,
  UPLOAD_SCRIPT
} from './scripts.js'
import type { Logger } from '../log.js'

/** the library's one logger shape (src/lib/log.ts), re-exported for the modules that import it from here */
export type { Logger }

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

/** What the lock read: facts of the host, its releases and journal. */
export interface HostState {
  compose: ComposeKind | 'none'
  /** the release `current` names (its folder may be missing: see currentMissing) */
  current?: string
  /** `current` names a release whose folder (release.json) is gone */
  currentMissing?: boolean
  releases: Map<string, ReleaseMeta>
  ledger: JournalEntry[]
  /** journal lines that did not parse (a torn last line), skipped */
  damaged?: number
  /** a transaction left open (its lock holder died with the host, say): the containers may differ from current */
  open?: JournalEntry
  /** the containers may not be what `current` names (set when an open transaction was closed) */
  diverged?: boolean
}

export interface StoreOptions {
  path: string
  project?: string
  log: Logger
  /** limit for one ordinary step on the host (default 10 min) */
  stepTimeoutMs?: number
  /** limit for the state read after the lock is taken (default 60 s) */
  readTimeoutMs?: number
}

export type StoreExec = (argv: string[], opts?: ExecOptions) => Promise<RemoteResult>

const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]
const now = (): string => new Date().toISOString()

/**
 * The one-line reason of a failed remote command: its first `ERR` line (shipline's scripts), else the
 * last line a tool marked as an error (`ERROR: …`, `Error …`: Compose, docker), else its last line.
 */
export function failureLine(r: RemoteResult): string {
  const text = (r.stdout + '\n' + r.stderr).trim()
  const lines = text.split('\n').map(l => l.trim())
  return (
    (/^ERR (.*)$/m.exec(text)?.[1] ??
      [...lines]
        .reverse()
        .find(l => /^(ERROR:|Error\b)/.test(l))
        ?.replace(/^ERROR:\s*/, '') ??
      lines.pop() ??
      `exit ${r.code}`) ||
    `exit ${r.code}`
  )
}

export class ReleaseStore {
  readonly remote: Remote
  readonly layout: Layout
  readonly token = randomBytes(8).toString('hex')
  readonly log: Logger
  private holder?: Promise<RemoteResult>
  private readonly stepTimeoutMs: number
  private readonly readTimeoutMs: number
  /** exec calls made (round trips), for the benchmark */
  execs = 0

  constructor(remote: Remote, opts: StoreOptions) {
    this.remote = remote
    this.layout = layout(opts.path, opts.project)
    this.log = opts.log
    this.stepTimeoutMs = opts.stepTimeoutMs ?? 600_000
    this.readTimeoutMs = opts.readTimeoutMs ?? 60_000
  }

  get label(): string {
    return this.remote.label
  }

  get runDir(): string {
    return `${this.layout.run}/${this.token}`
  }

  /** true while the connection is up (a Remote that cannot tell is taken as up) */
  get connected(): boolean {
    return this.remote.isOpen ? this.remote.isOpen() : true
  }

  /** Runs a command on the host, bounded by the step limit unless told otherwise. */
  exec: StoreExec = async (argv, opts = {}) => {
    this.execs++
    return this.remote.exec(argv, { timeoutMs: this.stepTimeoutMs, ...opts })
  }

  /** Runs a command and throws a UserError with its last output lines when it fails. */
  async check(what: string, argv: string[], opts: ExecOptions = {}): Promise<RemoteResult> {
    const r = await this.exec(argv, opts)
    if (r.code !== 0) {
      const err = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n')
      throw new UserError(`${this.label}: ${what} failed (exit ${r.code}): ${failureLine(r)}`, err)
    }
    return r
  }

  /**
   * Takes the host lock (waiting up to timeoutSec) and reads the state under it. The lock is held by a
   * remote process until finish() or until the connection dies. Bounded: the state read must follow the
   * lock within readTimeoutMs.
   */
  async lock(timeoutSec: number, owner: string): Promise<HostState> {
    let out = ''
    let settled = false
    let waitingSaid = false
    let locked = false
    this.execs++
    return new Promise<HostState>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const fail = (e: unknown): void => {
        if (settled) return
        settled = true
        if (timer) clearTimeout(timer)
        reject(e)
      }
      const arm = (ms: number, what: string): void => {
        if (timer) clearTimeout(timer)
        timer = setTimeout(() => {
          fail(
            new UserError(
              `${this.label}: ${what} on ${this.layout.path} did not finish within ${Math.round(ms / 1000)}s. Check the host (disk full? a hung 'docker' command?) and that ${this.layout.state} is readable; the lock ends with this connection.`,
              out.slice(-2000)
            )
          )
          void this.remote.close().catch(() => undefined)
        }, ms)
      }
      arm((timeoutSec + 60) * 1000, 'taking the lock')
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
        if (!locked && /^LOCKED$/m.test(out)) {
          locked = true
          arm(this.readTimeoutMs, 'reading the release state after taking the lock')
        }
        if (/^READY$/m.test(out)) {
          settled = true
          if (timer) clearTimeout(timer)
          try {
            const state = parseState(out)
            if (state.damaged)
              this.log.warning(
                `${this.label}: ${state.damaged} damaged line(s) in ${this.layout.ledger} skipped (a torn write); new entries start on a line of their own`
              )
            if (state.currentMissing)
              this.log.warning(
                `${this.label}: ${this.layout.current} names release ${state.current}, whose folder is missing on the host`
              )
            resolve(state)
          } catch (e) {
            reject(e)
          }
        }
      }
      this.holder = this.remote.exec(
        SH(LOCK_SCRIPT, this.layout.state, String(timeoutSec), this.token, owner.slice(0, 300)),
        { onStdout: onData }
      )
      this.holder.then(
        r => {
          if (settled) return
          const text = (r.stdout + '\n' + r.stderr).trim()
          if (/ERR timeout/.test(text)) {
            fail(
              new UserError(
                `${this.label}: another deploy or rollback held the lock on ${this.layout.path} for more than lock-timeout (${timeoutSec}s). Wait for it, or raise 'lock-timeout'.`
              )
            )
          } else {
            fail(
              new UserError(
                `${this.label}: could not take the lock on ${this.layout.path}: ${failureLine(r)}`,
                text
              )
            )
          }
        },
        e => fail(e)
      )
    })
  }

  /** Opens a transaction: the `begin` entry, and the entry that closes it should the runner vanish first. */
  async begin(entry: Omit<JournalEntry, 'time'>, abort: Omit<JournalEntry, 'time'>): Promise<void> {
    const b = JSON.stringify({ time: now(), ...entry })
    const a = JSON.stringify(abort).slice(1) // without '{': the lock holder prefixes the time
    await this.check(
      'opening the release transaction in the journal',
      SH(BEGIN_SCRIPT, this.layout.state, this.token),
      {
        stdin: `${b}\n${a}\n`
      }
    )
  }

  /** Appends one entry (outside a transaction: closing one found open by this deploy). */
  async append(entry: Omit<JournalEntry, 'time'>): Promise<void> {
    await this.check('appending to the journal', SH(APPEND_SCRIPT, this.layout.state), {
      stdin: JSON.stringify({ time: now(), ...entry }) + '\n'
    })
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
    copyEnvFrom?: string,
    /** KEY=value lines merged on the host into the copied .env (env/env-secrets without env-file) */
    envOverlay?: string
  ): Promise<void> {
    const dir = this.layout.release(meta.id)
    const entries: TarEntry[] = files.map(f => ({ name: f.name, data: f.data, mode: 0o644 }))
    if (env !== undefined) entries.push({ name: ENV_FILE, data: env, mode: 0o600 })
    else if (envOverlay) entries.push({ name: `${ENV_FILE}.overlay`, data: envOverlay, mode: 0o600 })
    entries.push({ name: META_FILE, data: JSON.stringify(meta) + '\n', mode: 0o644 })
    const from = env === undefined && copyEnvFrom ? `${this.layout.release(copyEnvFrom)}/${ENV_FILE}` : ''
    await this.check('uploading the release', SH(UPLOAD_SCRIPT, dir, from), { stdin: tar(entries) })
  }

  /**
   * Runs a command that changes containers, under the step lock, with `recover` armed first (the shell
   * text the lock holder runs should the runner go away; '' keeps what is armed).
   */
  async step(argv: string[], recover: string, opts: ExecOptions = {}): Promise<RemoteResult> {
    return this.exec(SH(STEP_SCRIPT, this.runDir, ...argv), { ...opts, stdin: recover })
  }

  /**
   * The recovery script: the runtime's lines that bring `restore` back, then the journal's `recovered`
   * entry (current already names it: `current` only moves in close()).
   */
  recoverScript(
    restoreLines: string[],
    entry: Omit<JournalEntry, 'time' | 'event'>,
    event: 'recovered' | 'aborted' = 'recovered'
  ): string {
    const json = JSON.stringify({
      ...entry,
      event,
      reason: entry.reason ?? 'the deploy connection was lost'
    })
    return [
      '# shipline: run by the lock holder when the runner went away before the transaction closed',
      `jadd() { if [ -s "$1" ] && [ -n "$(tail -c 1 "$1")" ]; then echo >> "$1"; fi; cat >> "$1"; }`,
      ...restoreLines,
      `printf '{"time":"%s",%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${shellJoin([json.slice(1)])} | jadd ${shellJoin([this.layout.ledger])}`,
      ''
    ].join('\n')
  }

  /**
   * Closes the transaction in one step a lost link cannot cut in half: the runtime's cut-over (when given),
   * `current` → `switchTo` (when given), the final entry, the recovery disarmed.
   */
  async close(
    entry: Omit<JournalEntry, 'time'>,
    switchTo: string | undefined,
    cutOver: string[] = []
  ): Promise<void> {
    const line = JSON.stringify({ time: now(), ...entry })
    await this.check(
      switchTo && cutOver.length ? `switching to ${switchTo}` : 'closing the release transaction',
      SH(CLOSE_SCRIPT, this.layout.state, this.token, switchTo ?? '', ...cutOver),
      { stdin: line + '\n', timeoutMs: Math.max(this.stepTimeoutMs, 120_000) }
    )
  }

  /** Lets the lock go: prunes, marks the run done, and waits (bounded) for the holder to exit. */
  async finish(prune: { releases?: string[]; images?: string[] } = {}): Promise<string[]> {
    if (!this.holder) return []
    const rel = (prune.releases ?? []).filter(id => RELEASE_ID_RE.test(id))
    const r = await this.exec(
      SH(FINISH_SCRIPT, this.layout.state, this.token, ...rel, '--images', ...(prune.images ?? []))
    )
    if (r.code !== 0) throw new UserError(`${this.label}: finishing failed: ${failureLine(r)}`)
    const holder = this.holder
    this.holder = undefined
    // the holder closes a transaction still open (a recovery may run a compose up): bounded
    await Promise.race([holder, new Promise(res => setTimeout(res, 30 * 60_000).unref())])
    return r.stdout.split('\n').filter(Boolean)
  }
}

/** Parses the lock script's output between LOCKED and READY. */
export function parseState(out: string): HostState {
  const state: HostState = { compose: 'none', releases: new Map(), ledger: [], damaged: 0 }
  const start = out.indexOf('LOCKED\n')
  const ledgerLines: string[] = []
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
        if (meta && typeof meta.id === 'string' && typeof meta.version === 'string')
          state.releases.set(rest.slice(0, sp2), meta)
      } catch {
        /* a damaged release.json: that release cannot be used */
      }
    } else if (key === 'ledger') ledgerLines.push(rest)
  }
  const j = parseJournal(ledgerLines.join('\n'))
  state.ledger = j.entries
  state.damaged = j.damaged.length
  state.open = openTransaction(j.entries)
  if (state.current && !state.releases.has(state.current)) state.currentMissing = true
  return state
}

/** The live release's metadata, when `current` names a kept one. */
export function liveRelease(state: HostState): ReleaseMeta | undefined {
  return state.current ? state.releases.get(state.current) : undefined
}

/**
 * The release that was live before the current one, from the journal's last final entry that made the
 * current release live (never a release that failed); else the newest older kept release. Undefined when
 * the journal names one whose folder is gone (see previousMissing).
 */
export function previousRelease(state: HostState): string | undefined {
  const cur = state.current
  if (!cur) return undefined
  for (let i = state.ledger.length - 1; i >= 0; i--) {
    const e = state.ledger[i]
    if (e.event === 'begin' || e.event === 'maintenance' || e.event === 'failed' || e.event === 'aborted')
      continue
    if (e.release === cur) {
      if (e.from) return state.releases.has(e.from) ? e.from : undefined
      break
    }
  }
  const gaveUp = ['auto-rollback', 'failed', 'recovered', 'revert', 'aborted']
  const failed = new Set(
    state.ledger.filter(e => e.attempted && gaveUp.includes(e.event)).map(e => e.attempted)
  )
  return [...state.releases.keys()]
    .filter(id => id < cur && !failed.has(id))
    .sort()
    .pop()
}

/** The journal's word for the release live before current, when its folder is no longer kept. */
export function previousMissing(state: HostState): string | undefined {
  const cur = state.current
  if (!cur) return undefined
  for (let i = state.ledger.length - 1; i >= 0; i--) {
    const e = state.ledger[i]
    if (e.event === 'begin' || e.event === 'maintenance' || e.event === 'failed' || e.event === 'aborted')
      continue
    if (e.release === cur) return e.from && !state.releases.has(e.from) ? e.from : undefined
  }
  return undefined
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

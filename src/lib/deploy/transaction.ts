/**
 * One release transaction on one host: the steps a deploy, a rollback, a revert or a put-back after a
 * failed smoke test all go through, journaled by the release store before each irreversible step.
 *
 *   begin (journal: intent)  → upload (deploys) → pull → up (recovery armed: put `live` back)
 *   → health → close: [runtime cut-over] + current → target + final entry + recovery disarmed, in one step
 *   → afterClose (drain, stop what no longer serves)
 *
 * Before `up`, a failure changes nothing live: the transaction closes `aborted`. From `up` on, any failure
 * (a command failing, a health check, a timeout) puts `live` back when auto-rollback is on and closes
 * `auto-rollback` (or `failed`). When the link is gone, nothing more can be done from here: the host's
 * lock holder runs the armed recovery (or the abort entry) by itself, and the fleet settles the host's
 * verdict by reading its journal once it can connect again (see fleet.ts settle()).
 */
import { randomBytes } from 'node:crypto'
import { errorMessage, isUserError } from '../errors.js'
import type { JournalEntry, FinalEvent } from '../release/journal.js'
import type { ReleaseMeta, ReleaseStore } from '../release/store.js'
import type { HealthOptions, HealthResult, RegistryLogin, Runtime } from '../runtime/runtime.js'
import type { HostResult, RemoteStep, StepEvent } from './types.js'
import type { Logger } from '../log.js'
import { shellJoin } from '../ssh/remote.js'
import { maintenanceArgv, switchMaintenance, type MaintenanceConfig } from './maintenance.js'
import {
  backupDir,
  hostEnv,
  runHostCommand,
  runReleaseCommand,
  type CommandRun,
  type ReleaseCommands
} from './commands.js'

export const newTxn = (): string => randomBytes(6).toString('hex')

export interface Attempt {
  kind: 'deploy' | 'rollback'
  txn: string
  /** the release this transaction makes live */
  target: ReleaseMeta
  /** the release `current` names and that serves now (undefined: none) */
  live?: ReleaseMeta
  /** live's own predecessor (the `from` of entries that leave live in place) */
  liveFrom?: string
  /** a deploy's upload: files, the .env text (undefined: copy live's) */
  upload?: {
    files: { name: string; data: string }[]
    env?: string
    copyEnvFrom?: string
    envOverlay?: string
  }
  /** only these services are brought up (--no-deps); default all */
  services?: string[]
  /** the services whose health gates the transaction */
  health: string[]
  healthTimeout: number
  healthOpts?: HealthOptions
  registry?: RegistryLogin
  /** the final event when it works (deploy, rollback, revert; auto-rollback when ship gives a release up) */
  okEvent: FinalEvent
  /** `from` of the final entry when it works (default: live) */
  okFrom?: string
  okFromVersion?: string
  /** extra fields of the final entry when it works (ship: the release given up) */
  okExtra?: Partial<JournalEntry>
  /** put `live` back when the target fails after containers changed */
  autoRollback: boolean
  actor?: string
  runUrl?: string
  onStep?(e: StepEvent): void | Promise<void>
  /** the host's logger (lines already carry the host label) */
  log: Logger
  /** deploys: hooks, and (the canary's attempt only) the backup and the release command */
  commands?: ReleaseCommands
  /** what each command did, filled in as they run (for the summary) */
  ran?: NonNullable<HostResult['commands']>
  /** the target's health gate result (probe, canary), for the summary */
  onHealth?(h: HealthResult): void
  /**
   * maintenance: release — the nginx maintenance page is on from before the hooks and the release command
   * until the switch (switched off inside the close step, so a lost link cannot leave it on after a
   * commit), or until the transaction ends otherwise
   */
  maintenance?: MaintenanceConfig
}

export type Outcome =
  /** the target is current and serves */
  | { state: 'committed' }
  /** nothing live changed (failed before up) */
  | { state: 'aborted'; message: string }
  /** the target failed; live is back (put-back healthy) */
  | { state: 'put-back'; message: string; logs?: string }
  /** the target failed and live could not be brought back (or auto-rollback off / nothing to go back to) */
  | { state: 'failed'; message: string; logs?: string }
  /** the link died: the host's lock holder closes the transaction; read its journal to know */
  | { state: 'lost'; message: string }

export async function transact(store: ReleaseStore, runtime: Runtime, a: Attempt): Promise<Outcome> {
  const { target, live } = a
  const host = store.label
  const step = async <T>(name: RemoteStep, fn: () => Promise<T>, release = target.id): Promise<T> => {
    await a.onStep?.({ host, kind: a.kind, step: name, phase: 'start', release })
    const r = await fn()
    await a.onStep?.({ host, kind: a.kind, step: name, phase: 'end', release })
    return r
  }
  const base = {
    txn: a.txn,
    kind: a.kind,
    attempted: target.id,
    attemptedVersion: target.version,
    actor: a.actor,
    runUrl: a.runUrl
  }
  const stay = { release: live?.id ?? '', version: live?.version, from: a.liveFrom }
  const lost = (e: unknown): Outcome | undefined =>
    store.connected
      ? undefined
      : {
          state: 'lost',
          message: `the connection was lost (${errorMessage(e).split('\n')[0]}); the host puts ${live ? `${live.version} (${live.id})` : 'nothing'} back by itself`
        }

  // the maintenance page's off switch, for the lock holder's scripts should the runner go away
  const offLine = a.maintenance
    ? [`${shellJoin(maintenanceArgv(store, a.maintenance, false))} >/dev/null 2>&1`]
    : []
  // maintenance: on before the commands, off in the close step (commit) or after the transaction ends
  let maintOn = false
  const maintOff = async (): Promise<void> => {
    if (!maintOn || !a.maintenance) return
    const cfg = a.maintenance
    try {
      await step('maintenance-off', () =>
        switchMaintenance(store, live, cfg, false, { actor: a.actor, runUrl: a.runUrl })
      )
      maintOn = false
      a.log.info('maintenance off')
    } catch (e) {
      a.log.warning(
        `the maintenance page is still on: ${errorMessage(e).split('\n')[0]}; switch it off with 'maintenance: off'`
      )
    }
  }
  const stillOn = (): string =>
    maintOn
      ? "; the maintenance page stays on (switch it off with 'maintenance: off' once a release serves)"
      : ''
  // what the release's commands did, for the final entry (ok or not)
  const records: Partial<Pick<JournalEntry, 'backup' | 'releaseCommand' | 'probe' | 'canary'>> = {}
  // 1. before anything live changes: failures close the transaction `aborted`
  try {
    await store.begin(
      { ...base, event: 'begin', ...stay },
      { ...base, event: 'aborted', ...stay, reason: 'the runner went away before anything live changed' }
    )
    if (a.upload) {
      const up = a.upload
      await step('upload', () =>
        store.upload(target, runtime.prepareFiles(target, up.files), up.env, up.copyEnvFrom, up.envOverlay)
      )
      a.log.info(`uploaded release ${target.id}`)
    }
    const pulled = await step('pull', () => runtime.ensureImages(Object.values(target.images), a.registry))
    a.log.info(pulled.length ? `pulled ${pulled.join(', ')}` : 'images already on the host')
    if (a.maintenance) {
      const cfg = a.maintenance
      await step('maintenance-on', () =>
        switchMaintenance(store, live, cfg, true, {
          actor: a.actor,
          runUrl: a.runUrl,
          reason: `deploying ${target.version}`
        })
      )
      maintOn = true
      // should the runner go away before `up`, the lock holder switches the page off and closes `aborted`
      await store.step(
        ['true'],
        store.recoverScript(
          offLine,
          {
            ...base,
            ...stay,
            reason: 'the runner went away before anything live changed',
            maintenance: 'off'
          },
          'aborted'
        )
      )
      a.log.info(`maintenance on while ${target.version} is deployed`)
    }
    await beforeUp(store, runtime, a, step, records)
  } catch (e) {
    const gone = lost(e)
    if (gone) return gone
    await maintOff()
    const message = `${errorMessage(e).split('\n')[0].replace(`${host}: `, '')}; nothing live changed${live ? `, ${live.version} still serves` : ''}`
    try {
      await store.close({ ...base, event: 'aborted', ...stay, reason: message, ...records }, undefined)
    } catch (e2) {
      return (
        lost(e2) ?? {
          state: 'failed',
          message: `${message}; and the journal could not be closed: ${errorMessage(e2)}`
        }
      )
    }
    return { state: 'aborted', message }
  }

  // 2. containers change: the recovery puts `live` back should the runner go away
  const recover = live
    ? store.recoverScript([...runtime.restoreLines(live), ...offLine], {
        ...base,
        ...stay,
        ...(a.maintenance ? { maintenance: 'off' as const } : {})
      })
    : ''
  let reason: string
  let logs: string | undefined
  try {
    a.log.info(`starting ${a.services?.length ? a.services.join(', ') : 'all services'} of ${target.version}`)
    await step('up', () => runtime.start(target, a.services, recover))
    a.log.info(`waiting up to ${a.healthTimeout}s for ${a.health.join(', ')} to be healthy`)
    const h = await step('health', () => runtime.waitHealthy(target, a.health, a.healthTimeout, a.healthOpts))
    if (h.probe) records.probe = h.probe
    if (h.canary) records.canary = h.canary.record
    a.onHealth?.(h)
    if (h.ok) {
      await step('switch', () =>
        store.close(
          {
            ...base,
            event: a.okEvent,
            release: target.id,
            version: target.version,
            from: a.okFrom ?? live?.id,
            fromVersion: a.okFrom !== undefined ? a.okFromVersion : live?.version,
            images: target.images,
            ...records,
            ...a.okExtra,
            ...(maintOn ? { maintenance: 'off' as const } : {})
          },
          target.id,
          maintOn && a.maintenance
            ? offThenCutOver(maintenanceArgv(store, a.maintenance, false), runtime.cutOverArgv(target))
            : runtime.cutOverArgv(target)
        )
      )
      maintOn = false
      a.log.info(`healthy (${h.state}); current → ${target.id}`)
      try {
        const stopped = await runtime.afterClose(target)
        if (stopped.length) a.log.info(stopped.join(', '))
      } catch (e) {
        a.log.warning(`${target.version} is live; cleaning up after it failed: ${errorMessage(e)}`)
      }
      await afterSwitch(store, a, step)
      return { state: 'committed' }
    }
    reason =
      h.result === 'canary-failed'
        ? `${target.version} failed its canary (${h.state})`
        : `${target.version} did not turn healthy within ${a.healthTimeout}s (${h.result}: ${h.state})`
    logs = h.logs
  } catch (e) {
    const gone = lost(e)
    if (gone) return gone
    // the host's label leads the step's error already: the result names the host once
    reason = errorMessage(e).split('\n')[0].replace(`${host}: `, '')
    logs = isUserError(e) ? e.details : undefined
  }
  a.log.warning(reason)
  if (logs) a.log.info(`last log lines of the failing containers:\n${logs}`)

  // 3. the target failed after containers changed: put live back
  try {
    if (a.autoRollback && live) {
      a.log.info(`putting ${live.version} (${live.id}) back`)
      const back = await step(
        'put-back',
        // the probe's checks are the new release's: the release put back is only health-gated
        () =>
          runtime.restore(live, a.health, a.healthTimeout, recover, { ...a.healthOpts, probe: undefined }),
        live.id
      )
      if (!back.ok)
        a.log.warning(
          `${live.version} is not healthy either (${back.result}: ${back.state})${back.logs ? `\n${back.logs}` : ''}`
        )
      // a healthy put-back serves again: the page goes; nothing healthy: it stays, users get a 503 page
      if (back.ok) await maintOff()
      const message =
        (back.ok
          ? reason
          : `${reason}; putting ${live.version} back failed too (${back.result}: ${back.state})`) + stillOn()
      await store.close(
        { ...base, event: back.ok ? 'auto-rollback' : 'failed', ...stay, reason: message, ...records },
        live.id
      )
      return back.ok ? { state: 'put-back', message, logs } : { state: 'failed', message, logs }
    }
    const message =
      `${reason}; ${
        live
          ? 'auto-rollback is off, the new containers were left running'
          : 'no previous release to go back to'
      }` + stillOn()
    await store.close({ ...base, event: 'failed', ...stay, reason: message, ...records }, undefined)
    return { state: 'failed', message, logs }
  } catch (e) {
    return lost(e) ?? { state: 'failed', message: `${reason}; then: ${errorMessage(e).split('\n')[0]}`, logs }
  }
}

type Step = <T>(name: RemoteStep, fn: () => Promise<T>, release?: string) => Promise<T>

/**
 * The close step's cut-over with the maintenance page switched off first (one host-side step, so a lost
 * link cannot leave the page on after the commit): should switching it off fail, nothing is cut over and
 * the close fails like a failed cut-over does.
 */
function offThenCutOver(off: string[], cut: string[]): string[] {
  return cut.length ? ['sh', '-c', `${shellJoin(off)} && ${shellJoin(cut)}`] : off
}

function note(a: Attempt, name: NonNullable<Attempt['ran']>[number]['name'], run: CommandRun): void {
  a.ran?.push({ name, record: run.record, ok: run.ok })
  const secs = (run.record.durationMs / 1000).toFixed(1)
  if (run.ok)
    a.log.info(`${name}: done in ${secs}s${run.record.tail ? `; last lines:\n${run.record.tail}` : ''}`)
  else
    a.log.warning(`${run.why} (after ${secs}s)${run.record.tail ? `; last lines:\n${run.record.tail}` : ''}`)
}

/**
 * pre-deploy hook, backup, release command: after the pull, before `up`; a failure throws (the
 * transaction closes `aborted`: nothing live changed), with the command's record kept for the entry.
 */
async function beforeUp(
  store: ReleaseStore,
  runtime: Runtime,
  a: Attempt,
  step: Step,
  records: Partial<Pick<JournalEntry, 'backup' | 'releaseCommand'>>
): Promise<void> {
  const c = a.commands
  if (!c) return
  const { target, live } = a
  if (c.preDeploy) {
    const cmd = c.preDeploy
    const run = await step('pre-deploy', () =>
      runHostCommand(store, 'pre-deploy', cmd, hostEnv({ store, target, live }), target)
    )
    note(a, 'pre-deploy', run)
    if (!run.ok) throw new Error(run.why)
  }
  if (c.backup) {
    const cmd = c.backup
    const dir = backupDir(store, target.id)
    const run = await step('backup', () =>
      runHostCommand(store, 'backup-command', cmd, hostEnv({ store, target, live, backupDir: dir }), target)
    )
    records.backup = run.record
    note(a, 'backup-command', run)
    if (!run.ok) throw new Error(`${run.why}; the release command did not run`)
  }
  if (c.release) {
    const rc = c.release
    a.log.info(`release command: ${rc.text} in a one-off ${rc.service} container of ${target.version}`)
    const run = await step('release-command', () =>
      runReleaseCommand(
        store,
        rc,
        target,
        name => runtime.oneOffArgv(target, rc.service, rc.argv, name, !live),
        a.txn
      )
    )
    records.releaseCommand = run.record
    note(a, 'release-command', run)
    if (!run.ok) throw new Error(run.why)
  }
}

/** post-deploy hook: the release is live already; a failure is a warning, the deploy stands. */
async function afterSwitch(store: ReleaseStore, a: Attempt, step: Step): Promise<void> {
  const cmd = a.commands?.postDeploy
  if (!cmd) return
  const { target, live } = a
  try {
    const run = await step('post-deploy', () =>
      runHostCommand(store, 'post-deploy', cmd, hostEnv({ store, target, live }), target)
    )
    note(a, 'post-deploy', run)
    if (!run.ok) a.log.warning(`${target.version} is live; the post-deploy hook failed: ${run.why}`)
  } catch (e) {
    a.log.warning(`${target.version} is live; the post-deploy hook could not run: ${errorMessage(e)}`)
  }
}

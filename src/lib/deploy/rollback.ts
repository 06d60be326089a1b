/**
 * rollback(): puts a previous release back on every host without rebuilding: the target's files are still
 * in its release folder, its images are pulled only when they are no longer on the host. One release
 * transaction per host (transaction.ts), health-gated like a deploy; a host where the target is already
 * live is left alone (idempotent). Every host's target is checked before any host changes.
 */
import { UserError } from '../errors.js'
import {
  liveRelease,
  previousMissing,
  previousRelease,
  type HostState,
  type ReleaseMeta
} from '../release/store.js'
import { validateProjectPath } from '../compose/validate.js'
import { closeFleet, openFleet, rollOut, settle, type Fleet, type FleetHost } from './fleet.js'
import { closeOpen, record } from './deploy.js'
import { newTxn, transact } from './transaction.js'
import type { RollbackOptions, RollbackResult } from './types.js'
import type { JournalEntry } from '../release/journal.js'
import { prefixed } from '../log.js'

const kept = (state: HostState): string =>
  [...state.releases.values()]
    .sort((a, b) => (a.id < b.id ? 1 : -1))
    .map(m => `${m.version} (${m.id})`)
    .join(', ') || 'none'

/** The target on one host: `to` as a release id, else the newest release with that version; default the previous. */
export function pickTarget(state: HostState, to: string | undefined, host: string): ReleaseMeta {
  if (to) {
    const byId = state.releases.get(to)
    if (byId) return byId
    const byVersion = [...state.releases.values()]
      .filter(m => m.version === to)
      .sort((a, b) => (a.id < b.id ? 1 : -1))
    // prefer the live one when it has that version (a no-op), else the newest
    const live = byVersion.find(m => m.id === state.current)
    if (live) return live
    if (byVersion[0]) return byVersion[0]
    const gone = state.ledger.find(e => e.release === to || e.version === to || e.attempted === to)
    throw new UserError(
      `${host}: no release with version or id '${to}' is kept on the host${gone ? ' (the journal knows it, but its folder is gone)' : ''}. Kept: ${kept(state)}.`
    )
  }
  if (!state.current)
    throw new UserError(
      `${host}: nothing has been deployed to this path yet, so there is nothing to roll back.`
    )
  const missing = previousMissing(state)
  if (missing)
    throw new UserError(
      `${host}: the release live before the current one, ${missing}, is no longer kept on the host (its folder is gone). Kept: ${kept(state)}. Name one with 'to'.`
    )
  const prev = previousRelease(state)
  if (!prev)
    throw new UserError(
      `${host}: the live release is the only one kept, so there is nothing to roll back to. Name a release with 'to'.`
    )
  return state.releases.get(prev)!
}

/**
 * True when the containers may not be what `current` says: the last final entry is a failed deploy that
 * was left running (auto-rollback off, or its put-back failed), or a transaction was found open. Rolling
 * back to `current` then brings it up again instead of being a no-op.
 */
function containersDiverge(state: HostState): boolean {
  if (state.diverged) return true
  const last = [...state.ledger].reverse().find(e => e.event !== 'begin' && e.event !== 'maintenance')
  return !!last && last.event === 'failed' && !!last.attempted
}

export async function rollback(opts: RollbackOptions): Promise<RollbackResult> {
  const path = validateProjectPath(opts.path)
  if (opts.hosts.length === 0)
    throw new UserError(`Input 'hosts' is empty. Name at least one host, e.g. 'hosts: deploy@203.0.113.10'.`)
  if (opts.to !== undefined && opts.to !== '' && !/^[A-Za-z0-9._+:@/-]{1,128}$/.test(opts.to)) {
    throw new UserError(
      `Input 'to' must be a version or a release id (letters, digits, . _ + : @ / -), got '${opts.to}'.`
    )
  }
  const fleet = await openFleet(
    { ...opts, path },
    `${opts.actor ?? 'someone'} ${opts.runUrl ?? ''} rollback`.trim(),
    'rollback'
  )
  try {
    return await rollbackOn(fleet, opts)
  } finally {
    await closeFleet(fleet, undefined, 'rollback')
  }
}

/** A rollback on hosts already locked (by rollback() or by ship after its deploy). */
export async function rollbackOn(fleet: Fleet, opts: RollbackOptions): Promise<RollbackResult> {
  const plans = new Map<
    FleetHost,
    { target: ReleaseMeta; live?: ReleaseMeta; liveFrom?: string; diverged: boolean }
  >()
  // every host must know its target before any host changes
  for (const h of fleet.hosts) {
    const target = pickTarget(h.state, opts.to || undefined, h.label)
    const live = liveRelease(h.state)
    plans.set(h, { target, live, liveFrom: previousRelease(h.state), diverged: containersDiverge(h.state) })
  }
  for (const h of fleet.hosts) if (h.state.open) await closeOpen(h)
  const first = plans.get(fleet.hosts[0])
  if (first && (first.target.id !== first.live?.id || first.diverged)) {
    const t = first.target
    await opts.onPlanned?.({
      releaseId: t.id,
      version: t.version,
      images: t.images,
      sha: t.sha,
      fromVersion: first.live?.version
    })
  }
  const txns = new Map<FleetHost, string>()
  const ok = await rollOut(fleet.hosts, opts.maxParallel ?? 1, async h => {
    const { target, live, liveFrom } = plans.get(h)!
    const diverged = containersDiverge(h.state) || plans.get(h)!.diverged
    const log = prefixed(opts.log, `${h.label}: `)
    h.result.status = 'skipped'
    h.result.message = undefined
    Object.assign(h.result, {
      releaseId: target.id,
      version: target.version,
      previousReleaseId: live?.id,
      previousVersion: live?.version
    })
    if (live && live.id === target.id && !diverged) {
      h.result.status = 'unchanged'
      h.result.message = `${target.version} (${target.id}) is already live`
      log.info(h.result.message)
      return true
    }
    log.info(
      `rolling back from ${live ? `${live.version} (${live.id})` : 'nothing'} to ${target.version} (${target.id})`
    )
    const migrated = migratedPast(h.state, target.id)
    if (migrated.length)
      log.warning(
        `rolling back past ${migrated.map(e => `${e.version ?? e.release} (release command: ${e.releaseCommand!.command})`).join(', ')}: the code goes back, the database schema does not by itself. If ${target.version} cannot run on the newer schema, run the down migration (e.g. with the exec action) or deploy a fix forward.`
      )
    const givenUp = opts.givingUp && live && live.id !== target.id ? live : undefined
    const targetFrom = givenUp ? previousRelease({ ...h.state, current: target.id }) : undefined
    const txn = newTxn()
    txns.set(h, txn)
    let out = await transact(h.store, h.runtime, {
      kind: 'rollback',
      txn,
      target,
      // putting a release back over itself (diverged containers): the put-back target is the same
      live: live && live.id !== target.id ? live : undefined,
      liveFrom,
      health: target.services,
      healthTimeout: opts.healthTimeout,
      healthOpts: { stableSec: opts.stableSeconds },
      registry: opts.registry,
      okEvent: givenUp ? 'auto-rollback' : 'rollback',
      okFrom: givenUp ? targetFrom : undefined,
      okFromVersion: givenUp && targetFrom ? h.state.releases.get(targetFrom)?.version : undefined,
      okExtra: givenUp
        ? { attempted: givenUp.id, attemptedVersion: givenUp.version, reason: opts.givingUp }
        : undefined,
      autoRollback: true,
      actor: opts.actor,
      runUrl: opts.runUrl,
      onStep: opts.onStep,
      log
    })
    if (out.state === 'lost') out = await settle(fleet, h, txn, 'rollback')
    if (out.state === 'put-back') {
      h.result.status = 'failed'
      h.result.message = `${out.message}; ${live?.version ?? 'the live release'} is back`
      return false
    }
    return record(h, out, 'rolled-back')
  })
  if (!ok) {
    // hosts already rolled back go forward again, so all hosts end on one version
    await Promise.all(
      fleet.hosts
        .filter(h => h.result.status === 'rolled-back')
        .map(async h => {
          const { target, live, liveFrom } = plans.get(h)!
          if (!live) return
          const txn = newTxn()
          let out = await transact(h.store, h.runtime, {
            kind: 'rollback',
            txn,
            target: live,
            live: target,
            liveFrom: live.id,
            health: live.services,
            healthTimeout: opts.healthTimeout,
            healthOpts: { stableSec: opts.stableSeconds },
            registry: opts.registry,
            okEvent: 'revert',
            okFrom: liveFrom,
            okExtra: {
              attempted: target.id,
              attemptedVersion: target.version,
              reason: 'another host failed'
            },
            autoRollback: true,
            onStep: opts.onStep,
            log: prefixed(opts.log, `${h.label}: `)
          })
          if (out.state === 'lost') out = await settle(fleet, h, txn, 'rollback')
          h.result.status = out.state === 'committed' ? 'reverted' : 'failed'
        })
    )
  }
  const hosts = fleet.hosts.map(h => h.result)
  const allSame = hosts.every(r => r.status === 'unchanged')
  const bad = hosts.find(r => r.status === 'failed')
  return {
    status: !ok ? 'failed' : allSame ? 'unchanged' : 'rolled-back',
    fromVersion: first?.live?.version ?? '',
    toVersion: first?.target.version ?? '',
    releaseId: first?.target.id ?? '',
    images: first?.target.images ?? {},
    hosts,
    error: ok ? undefined : `${bad?.host ?? 'a host'}: ${bad?.message ?? 'rollback failed'}`,
    connections: fleet.hosts.length
  }
}

/**
 * The deploys after `targetId` (up to what is current) whose release command ran through: a rollback to
 * `targetId` takes the code back past them, not what they did to the database.
 */
export function migratedPast(state: HostState, targetId: string): JournalEntry[] {
  const cur = state.current ?? ''
  return state.ledger.filter(
    e => e.event === 'deploy' && e.releaseCommand?.exit === 0 && e.release > targetId && e.release <= cur
  )
}

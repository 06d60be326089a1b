/**
 * rollback(): puts a previous release back on every host without rebuilding: the target's files are still
 * in its release folder, its images are pulled only when they are no longer on the host. Health-gated like
 * a deploy, recorded in the ledger; a host where the target is already live is left alone (idempotent).
 */
import { UserError } from '../errors.js'
import { previousRelease, type HostState, type ReleaseMeta } from '../compose/host.js'
import { validateProjectPath } from '../compose/validate.js'
import { closeFleet, openFleet, rollOut, type FleetHost } from './fleet.js'
import { putBack } from './deploy.js'
import type { RollbackOptions, RollbackResult } from './types.js'

const now = (): string => new Date().toISOString()

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
    const known = [...state.releases.values()].map(m => m.version)
    throw new UserError(
      `${host}: no release with version or id '${to}' is kept on the host. Kept: ${[...new Set(known)].join(', ') || 'none'}.`
    )
  }
  if (!state.current)
    throw new UserError(
      `${host}: nothing has been deployed to this path yet, so there is nothing to roll back.`
    )
  const prev = previousRelease(state)
  if (!prev)
    throw new UserError(
      `${host}: the live release is the only one kept, so there is nothing to roll back to. Name a release with 'to'.`
    )
  return state.releases.get(prev)!
}

/**
 * True when the containers may not be what `current` says: the last ledger entry is a failed deploy
 * that was left running (auto-rollback off, or its put-back failed). Rolling back to `current` then
 * brings it up again instead of being a no-op.
 */
export function containersDiverge(state: HostState): boolean {
  const last = state.ledger[state.ledger.length - 1]
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
    `${opts.actor ?? 'someone'} ${opts.runUrl ?? ''} rollback`.trim()
  )
  const plans = new Map<
    FleetHost,
    { target: ReleaseMeta; live?: ReleaseMeta; liveFrom?: string; diverged: boolean }
  >()
  let ok = false
  try {
    // every host must know its target before any host changes
    for (const h of fleet) {
      const target = pickTarget(h.state, opts.to || undefined, h.label)
      const live = h.state.current ? h.state.releases.get(h.state.current) : undefined
      plans.set(h, { target, live, liveFrom: previousRelease(h.state), diverged: containersDiverge(h.state) })
    }
    const first = plans.get(fleet[0])
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
    ok = await rollOut(fleet, opts.maxParallel ?? 1, async h => {
      const { target, live, liveFrom, diverged } = plans.get(h)!
      const log = (m: string): void => opts.log.info(`${h.label}: ${m}`)
      Object.assign(h.result, {
        releaseId: target.id,
        version: target.version,
        previousReleaseId: live?.id,
        previousVersion: live?.version
      })
      if (live && live.id === target.id && !diverged) {
        h.result.status = 'unchanged'
        h.result.message = `${target.version} (${target.id}) is already live`
        log(h.result.message)
        return true
      }
      log(
        `rolling back from ${live ? `${live.version} (${live.id})` : 'nothing'} to ${target.version} (${target.id})`
      )
      const pulled = await h.ch.ensureImages(Object.values(target.images), opts.registry)
      log(pulled.length ? `pulled ${pulled.join(', ')}` : 'images still on the host: no registry needed')
      const recover = live ? h.ch.recoverScript(live, liveFrom, target.id) : ''
      const back = await putBack(
        h.ch,
        target,
        target.services,
        opts.healthTimeout,
        recover,
        opts.stableSeconds
      )
      if (back) {
        const givenUp = opts.givingUp && live ? live : undefined
        const targetFrom = givenUp ? previousRelease({ ...h.state, current: target.id }) : undefined
        await h.ch.switchCurrent(target.id, {
          time: now(),
          event: givenUp ? 'auto-rollback' : 'rollback',
          release: target.id,
          version: target.version,
          from: givenUp ? targetFrom : live?.id,
          fromVersion: givenUp ? targetFrom && h.state.releases.get(targetFrom)?.version : live?.version,
          ...(givenUp ? { attempted: givenUp.id, reason: opts.givingUp } : {}),
          actor: opts.actor,
          runUrl: opts.runUrl
        })
        h.result.status = 'rolled-back'
        log(`healthy; current → ${target.id}`)
        return true
      }
      h.result.status = 'failed'
      h.result.message = `${target.version} did not turn healthy within ${opts.healthTimeout}s`
      if (live) {
        const again = await putBack(
          h.ch,
          live,
          live.services,
          opts.healthTimeout,
          recover,
          opts.stableSeconds
        )
        h.result.message += again ? `; ${live.version} is back` : `; putting ${live.version} back failed too`
      }
      await h.ch.appendLedger({
        time: now(),
        event: 'failed',
        release: live?.id ?? '',
        version: live?.version,
        from: liveFrom,
        attempted: target.id,
        actor: opts.actor,
        runUrl: opts.runUrl,
        reason: h.result.message
      })
      return false
    })
    if (!ok) {
      // hosts already rolled back go forward again, so all hosts end on one version
      await Promise.all(
        fleet
          .filter(h => h.result.status === 'rolled-back')
          .map(async h => {
            const { target, live, liveFrom } = plans.get(h)!
            if (!live) return
            const again = await putBack(
              h.ch,
              live,
              live.services,
              opts.healthTimeout,
              h.ch.recoverScript(live, liveFrom, target.id),
              opts.stableSeconds
            )
            if (again) {
              await h.ch.switchCurrent(live.id, {
                time: now(),
                event: 'revert',
                release: live.id,
                version: live.version,
                from: liveFrom,
                attempted: target.id,
                reason: 'another host failed'
              })
              h.result.status = 'reverted'
            } else h.result.status = 'failed'
          })
      )
    }
  } finally {
    await closeFleet(fleet)
  }
  const hosts = fleet.map(h => h.result)
  const first = plans.get(fleet[0])
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
    connections: fleet.length
  }
}

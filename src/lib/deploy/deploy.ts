/**
 * deploy(): validate → pin images → connect and lock every host → per host (canary first): upload the
 * release → pull what is missing → up -d → wait healthy → switch current; on failure put the previous
 * release back (auto-rollback) and revert the hosts already switched → prune → unlock.
 */
import { UserError, errorMessage } from '../errors.js'
import { ComposeHost, prunePlan, previousRelease, type HostState, type ReleaseMeta } from '../compose/host.js'
import { makeReleaseId, validateProjectPath, validateVersion } from '../compose/validate.js'
import { checkServices, overrideFile, pinImages, readComposeFiles, releaseMeta } from './release.js'
import { closeFleet, openFleet, rollOut, type FleetHost } from './fleet.js'
import type { DeployOptions, DeployResult, HostResult } from './types.js'

const now = (): string => new Date().toISOString()

export async function deploy(opts: DeployOptions): Promise<DeployResult> {
  // 1. everything that can be checked locally, before any host is contacted
  const path = validateProjectPath(opts.path)
  const version = validateVersion(opts.version)
  if (opts.hosts.length === 0)
    throw new UserError(`Input 'hosts' is empty. Name at least one host, e.g. 'hosts: deploy@203.0.113.10'.`)
  const compose = readComposeFiles(opts.composeFiles)
  const { images, updated } = checkServices({ compose, images: opts.images, services: opts.services })
  const pinned = await pinImages(images, opts.resolveDigest)
  const releaseId = makeReleaseId(version)
  await opts.onPlanned?.({ releaseId, version, images: pinned })
  const subset = opts.services && opts.services.length ? updated : undefined

  // 2. connect and lock every host
  const fleet = await openFleet(
    { ...opts, path },
    `${opts.actor ?? 'someone'} ${opts.runUrl ?? ''} release ${releaseId}`.trim()
  )
  const metas = new Map<FleetHost, { meta: ReleaseMeta; prev?: ReleaseMeta; prevFrom?: string }>()

  const deployOne = async (h: FleetHost): Promise<boolean> => {
    const { ch, state } = h
    const log = (m: string): void => opts.log.info(`${h.label}: ${m}`)
    const prevId = state.current && state.releases.has(state.current) ? state.current : undefined
    const prev = prevId ? state.releases.get(prevId) : undefined
    const prevFrom = previousRelease(state)
    // carry over the previous release's pins of services that still exist and this deploy does not name
    const carried = Object.fromEntries(
      Object.entries(prev?.images ?? {}).filter(([s]) => compose.services.includes(s) && !(s in pinned))
    )
    const all = { ...carried, ...pinned }
    const meta = releaseMeta({
      id: releaseId,
      version,
      sha: opts.sha,
      actor: opts.actor,
      runUrl: opts.runUrl,
      compose,
      images: all,
      updated,
      env: opts.envFile !== undefined || !!prev?.env
    })
    metas.set(h, { meta, prev, prevFrom })
    Object.assign(h.result, {
      releaseId,
      version,
      previousReleaseId: prevId,
      previousVersion: prev?.version,
      compose: state.compose
    })
    log(`compose ${state.compose}; live: ${prev ? `${prev.version} (${prevId})` : 'nothing yet'}`)

    await ch.upload(
      meta,
      [...compose.files, { name: 'shipline.override.yml', data: overrideFile(all, compose.version) }],
      opts.envFile,
      opts.envFile === undefined && prev?.env ? prevId : undefined
    )
    log(`uploaded release ${releaseId}`)
    const pulled = await ch.ensureImages(Object.values(all), opts.registry)
    log(pulled.length ? `pulled ${pulled.join(', ')}` : 'images already on the host')
    const recover = prev ? ch.recoverScript(prev, prevFrom, releaseId) : ''
    log(`starting ${subset ? subset.join(', ') : 'all services'}`)
    await ch.up(meta, subset, recover)
    log(`waiting up to ${opts.healthTimeout}s for ${updated.join(', ')} to be healthy`)
    const health = await ch.waitHealthy(updated, opts.healthTimeout, { stableSec: opts.stableSeconds })
    if (health.ok) {
      await ch.switchCurrent(releaseId, {
        time: now(),
        event: 'deploy',
        release: releaseId,
        version,
        from: prevId,
        fromVersion: prev?.version,
        actor: opts.actor,
        runUrl: opts.runUrl,
        images: all
      })
      h.result.status = 'deployed'
      log(`healthy (${health.state}); current → ${releaseId}`)
      return true
    }
    h.result.logs = health.logs
    h.result.message = `${version} did not turn healthy within ${opts.healthTimeout}s (${health.result}: ${health.state})`
    opts.log.warning(`${h.label}: ${h.result.message}`)
    if (health.logs) opts.log.info(`${h.label}: last log lines of the failing containers:\n${health.logs}`)
    if (opts.autoRollback && prev && prevId) {
      log(`putting ${prev.version} (${prevId}) back`)
      const back = await putBack(ch, prev, updated, opts.healthTimeout, recover, opts.stableSeconds)
      await ch.appendLedger({
        time: now(),
        event: back ? 'auto-rollback' : 'failed',
        release: prevId,
        version: prev.version,
        from: prevFrom,
        attempted: releaseId,
        actor: opts.actor,
        runUrl: opts.runUrl,
        reason: h.result.message
      })
      h.result.status = back ? 'rolled-back' : 'failed'
      if (!back) h.result.message += `; putting ${prev.version} back failed too`
      return false
    }
    await ch.appendLedger({
      time: now(),
      event: 'failed',
      release: prevId ?? '',
      version: prev?.version,
      from: prevFrom,
      attempted: releaseId,
      actor: opts.actor,
      runUrl: opts.runUrl,
      reason: h.result.message
    })
    h.result.status = 'failed'
    if (!prev) h.result.message += '; no previous release to go back to'
    else h.result.message += '; auto-rollback is off, the new containers were left running'
    return false
  }

  let ok = false
  try {
    ok = await rollOut(fleet, opts.maxParallel ?? 1, deployOne)
    if (!ok) await revertSwitched(fleet, metas, opts, releaseId)
  } finally {
    await closeFleet(fleet, h => {
      if (!ok) return undefined
      const m = metas.get(h)
      if (!m) return undefined
      const st: HostState = {
        ...h.state,
        current: releaseId,
        releases: new Map([...h.state.releases, [releaseId, m.meta]])
      }
      st.ledger = [...h.state.ledger, { time: now(), event: 'deploy', release: releaseId, from: m.prev?.id }]
      return prunePlan(st, releaseId, opts.keepReleases)
    })
  }
  return result(fleet, ok, releaseId, version, pinned, metas)
}

/** up -d of a previous release, then its health; true when it is healthy again. */
export async function putBack(
  ch: ComposeHost,
  prev: ReleaseMeta,
  services: string[],
  timeout: number,
  recover: string,
  stableSec?: number
): Promise<boolean> {
  try {
    await ch.up(prev, undefined, recover)
    const h = await ch.waitHealthy(
      services.filter(s => prev.services.includes(s)),
      timeout,
      { stableSec }
    )
    if (!h.ok)
      ch.log.warning(
        `${ch.label}: ${prev.version} is not healthy either (${h.result}: ${h.state})\n${h.logs}`
      )
    return h.ok
  } catch (e) {
    ch.log.warning(`${ch.label}: putting ${prev.version} back failed: ${errorMessage(e)}`)
    return false
  }
}

async function revertSwitched(
  fleet: FleetHost[],
  metas: Map<FleetHost, { meta: ReleaseMeta; prev?: ReleaseMeta; prevFrom?: string }>,
  opts: DeployOptions,
  releaseId: string
): Promise<void> {
  const failedHost =
    fleet.find(h => h.result.status === 'failed' || h.result.status === 'rolled-back')?.label ??
    'another host'
  await Promise.all(
    fleet
      .filter(h => h.result.status === 'deployed')
      .map(async h => {
        const m = metas.get(h)!
        if (!m.prev) {
          h.result.message = `stays on ${m.meta.version}: no previous release to go back to`
          return
        }
        opts.log.info(
          `${h.label}: ${failedHost} failed; putting ${m.prev.version} back so all hosts run one version`
        )
        const back = await putBack(
          h.ch,
          m.prev,
          m.meta.updated,
          opts.healthTimeout,
          h.ch.recoverScript(m.prev, m.prevFrom, releaseId),
          opts.stableSeconds
        )
        if (back) {
          await h.ch.switchCurrent(m.prev.id, {
            time: now(),
            event: 'revert',
            release: m.prev.id,
            version: m.prev.version,
            from: m.prevFrom,
            attempted: releaseId,
            actor: opts.actor,
            runUrl: opts.runUrl,
            reason: `${failedHost} failed`
          })
          h.result.status = 'reverted'
          h.result.message = `went back to ${m.prev.version} because ${failedHost} failed`
        } else {
          h.result.status = 'failed'
          h.result.message = `could not go back to ${m.prev.version} after ${failedHost} failed`
        }
      })
  )
}

function result(
  fleet: FleetHost[],
  ok: boolean,
  releaseId: string,
  version: string,
  pinned: Record<string, string>,
  metas: Map<FleetHost, { meta: ReleaseMeta; prev?: ReleaseMeta }>
): DeployResult {
  const hosts: HostResult[] = fleet.map(h => h.result)
  const first = fleet[0]
  const m = first ? metas.get(first) : undefined
  const images = m ? m.meta.images : pinned
  if (ok)
    return {
      status: 'deployed',
      releaseId,
      version,
      previousVersion: m?.prev?.version ?? '',
      images,
      hosts,
      connections: fleet.length
    }
  // every host back on its previous release (or never touched) counts as rolled back
  const allBack = hosts.every(
    r => r.status === 'rolled-back' || r.status === 'reverted' || r.status === 'skipped'
  )
  const bad = hosts.find(r => r.status === 'failed' || r.status === 'rolled-back')
  const status = allBack && hosts.some(r => r.status === 'rolled-back') ? 'rolled-back' : 'failed'
  const error = `${bad?.host ?? 'a host'}: ${bad?.message ?? 'deploy failed'}${status === 'rolled-back' ? '; the previous release is back on every host' : ''}`
  const live = m?.prev
  return {
    status,
    releaseId: status === 'rolled-back' && live ? live.id : releaseId,
    version: status === 'rolled-back' && live ? live.version : version,
    previousVersion: live?.version ?? '',
    images: status === 'rolled-back' && live ? live.images : images,
    hosts,
    error,
    connections: fleet.length
  }
}

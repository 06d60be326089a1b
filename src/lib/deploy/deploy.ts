/**
 * deploy(): validate → pin images → connect and lock every host → per host (canary first) one release
 * transaction (transaction.ts): upload → pull → up → health → switch; on failure the previous release is
 * put back (auto-rollback) and the hosts already switched are reverted → prune → unlock.
 *
 * The step's status comes from each host's transaction outcome; where a link died, from the host's
 * journal read again (fleet.ts settle()).
 */
import { UserError, errorMessage } from '../errors.js'
import { liveRelease, previousRelease, prunePlan, type ReleaseMeta } from '../release/store.js'
import { makeReleaseId, validateProjectPath, validateVersion } from '../compose/validate.js'
import { checkServices, overrideFile, pinImages, readComposeFiles, releaseMeta } from './release.js'
import { closeFleet, openFleet, reconnect, rollOut, settle, type Fleet, type FleetHost } from './fleet.js'
import { newTxn, transact, type Outcome } from './transaction.js'
import { checkReleaseCommand } from './commands.js'
import { diffEnv, envDiffLine, ENV_HASH_SCRIPT, newSalt, planEnv } from './env.js'
import { ENV_FILE } from '../compose/layout.js'
import type { DeployOptions, DeployResult, HostResult } from './types.js'
import { prefixed } from '../log.js'

interface HostPlan {
  meta: ReleaseMeta
  prev?: ReleaseMeta
  prevFrom?: string
  txn: string
}

/** What a deploy leaves for ship: the fleet still locked, each host's plan. */
export interface HeldDeploy {
  fleet: Fleet
  result: DeployResult
  plans: Map<FleetHost, HostPlan>
}

export async function deploy(opts: DeployOptions): Promise<DeployResult> {
  const held = await deployHeld(opts)
  await releaseDeploy(held, opts)
  return held.result
}

/** Lets the locks of a held deploy go, pruning when it went live. */
export async function releaseDeploy(
  held: HeldDeploy,
  opts: Pick<DeployOptions, 'keepReleases'>
): Promise<void> {
  const ok = held.result.status === 'deployed'
  await closeFleet(held.fleet, h => {
    const m = held.plans.get(h)
    if (!ok || !m || h.state.current !== m.meta.id) return undefined
    return prunePlan(h.state, m.meta.id, opts.keepReleases)
  })
  for (const h of held.fleet.hosts) {
    const r = held.result.hosts.find(x => x.host === h.label)
    if (r) r.execs = h.store.execs
  }
}

/** A deploy whose locks stay held (ship smoke-tests before letting them go). */
export async function deployHeld(opts: DeployOptions): Promise<HeldDeploy> {
  // 1. everything that can be checked locally, before any host is contacted
  const path = validateProjectPath(opts.path)
  const version = validateVersion(opts.version)
  if (opts.hosts.length === 0)
    throw new UserError(`Input 'hosts' is empty. Name at least one host, e.g. 'hosts: deploy@203.0.113.10'.`)
  const compose = readComposeFiles(opts.composeFiles)
  const { images, updated } = checkServices({ compose, images: opts.images, services: opts.services })
  checkReleaseCommand(opts.commands?.release, compose.services)
  const envPlan = planEnv({ envFile: opts.envFile, env: opts.env, envSecrets: opts.envSecrets })
  const envGiven = envPlan.file !== undefined || envPlan.overlay !== undefined
  const salt = newSalt()
  const pinned = await pinImages(images, opts.resolveDigest)
  const releaseId = makeReleaseId(version)
  await opts.onPlanned?.({ releaseId, version, images: pinned })
  const subset = opts.services && opts.services.length ? updated : undefined

  // 2. connect and lock every host
  const fleet = await openFleet(
    { ...opts, path },
    `${opts.actor ?? 'someone'} ${opts.runUrl ?? ''} release ${releaseId}`.trim(),
    'deploy'
  )
  const plans = new Map<FleetHost, HostPlan>()
  const release = { fleet, plans, result: undefined as unknown as DeployResult }
  try {
    // 3. every host's plan before any host changes; refusals here change nothing anywhere
    for (const h of fleet.hosts) {
      const { state } = h
      const prev = liveRelease(state)
      if (state.currentMissing && envPlan.file === undefined)
        throw new UserError(
          `${h.label}: ${h.store.layout.current} names release ${state.current}, whose folder is missing, so its .env cannot be carried over and it cannot be put back. Set 'env-file' for this deploy, or restore ${h.store.layout.release(state.current!)}.`
        )
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
        env: envGiven || !!prev?.env
      })
      plans.set(h, { meta, prev, prevFrom: previousRelease(state), txn: newTxn() })
      Object.assign(h.result, {
        releaseId,
        version,
        previousReleaseId: prev?.id,
        previousVersion: prev?.version,
        compose: state.compose
      })
      const live = prev
        ? `${prev.version} (${prev.id})`
        : state.currentMissing
          ? `release ${state.current}, whose folder is missing: nothing to put back`
          : 'nothing yet'
      opts.log.info(`${h.label}: ${h.runtime.name}, compose ${state.compose}; live: ${live}`)
      if (state.open) await closeOpen(h)
      if (envGiven) {
        try {
          const hashes = prev?.env
            ? (
                await h.store.check(
                  'comparing the .env with the live release',
                  ['sh', '-c', ENV_HASH_SCRIPT, 'sh', `${h.store.layout.release(prev.id)}/${ENV_FILE}`],
                  { stdin: salt + '\n' }
                )
              ).stdout
            : ''
          h.result.env = envDiffLine(diffEnv(envPlan, salt, hashes))
        } catch (e) {
          if (!h.store.connected) throw e
          h.result.env = `not compared (${errorMessage(e).split('\n')[0]})`
        }
        opts.log.info(`${h.label}: .env: ${h.result.env}`)
      }
    }

    const deployOne = async (h: FleetHost): Promise<boolean> => {
      const m = plans.get(h)!
      const all = m.meta.images
      let out: Outcome = await transact(h.store, h.runtime, {
        kind: 'deploy',
        txn: m.txn,
        target: m.meta,
        live: m.prev,
        liveFrom: m.prevFrom,
        upload: {
          files: [
            ...compose.files,
            { name: 'shipline.override.yml', data: overrideFile(all, compose.version) }
          ],
          env: envPlan.file,
          copyEnvFrom: envPlan.file === undefined && m.prev?.env ? m.prev.id : undefined,
          envOverlay: envPlan.overlay
        },
        services: subset,
        health: updated,
        healthTimeout: opts.healthTimeout,
        healthOpts: { stableSec: opts.stableSeconds, probe: opts.probe, canary: opts.canary },
        onHealth: r => {
          if (r.canary) h.result.canary = r.canary
        },
        maintenance: opts.maintenance,
        registry: opts.registry,
        okEvent: 'deploy',
        autoRollback: opts.autoRollback,
        actor: opts.actor,
        runUrl: opts.runUrl,
        onStep: opts.onStep,
        log: prefixed(opts.log, `${h.label}: `),
        // the backup and the release command once per deploy: on the canary, before any host changes
        commands:
          h === fleet.hosts[0]
            ? opts.commands
            : { preDeploy: opts.commands?.preDeploy, postDeploy: opts.commands?.postDeploy },
        ran: (h.result.commands = [])
      })
      if (out.state === 'lost') {
        opts.log.warning(`${h.label}: ${out.message}; connecting again to read the outcome`)
        out = await settle(fleet, h, m.txn, 'deploy')
      } else if (out.state === 'committed') {
        // what the host now holds, for the prune plan and for ship's put-back on the same lock
        h.state.current = m.meta.id
        h.state.releases.set(m.meta.id, m.meta)
        h.state.ledger.push({ time: '', event: 'deploy', txn: m.txn, release: m.meta.id, from: m.prev?.id })
      }
      return record(h, out, 'deployed')
    }

    const ok = await rollOut(fleet.hosts, opts.maxParallel ?? 1, deployOne)
    if (!ok) await revertSwitched(fleet, plans, opts)
    release.result = result(fleet, ok, releaseId, version, pinned, plans)
  } catch (e) {
    await closeFleet(fleet)
    throw e
  }
  return release
}

/** Sets a host's result from a transaction outcome; true when it committed. */
export function record(h: FleetHost, out: Outcome, committed: HostResult['status']): boolean {
  switch (out.state) {
    case 'committed':
      h.result.status = committed
      return true
    case 'put-back':
      h.result.status = 'rolled-back'
      h.result.message = out.message
      h.result.logs = out.logs
      return false
    default:
      h.result.status = 'failed'
      h.result.message = out.message
      if ('logs' in out) h.result.logs = out.logs
      return false
  }
}

/** A transaction left open (its lock holder died with the host): close it, saying what is known. */
export async function closeOpen(h: FleetHost): Promise<void> {
  const o = h.state.open!
  const cur = h.state.current ?? ''
  h.store.log.warning(
    `${h.label}: the journal's last transaction (${o.txn ?? '?'}, ${o.kind ?? 'deploy'} of ${o.attempted ?? '?'}) was left open; closing it: the containers may differ from ${cur || 'current'} until this ${o.kind ?? 'deploy'} replaces them`
  )
  await h.store.append({
    event: 'aborted',
    txn: o.txn,
    kind: o.kind,
    release: cur,
    attempted: o.attempted,
    reason: 'left open (the host lost its lock holder); closed by the next deploy'
  })
  h.state.ledger.push({ time: '', event: 'aborted', txn: o.txn, release: cur, attempted: o.attempted })
  h.state.open = undefined
  h.state.diverged = true
}

/** Hosts that had switched go back to their previous release (a transaction of its own each). */
async function revertSwitched(
  fleet: Fleet,
  plans: Map<FleetHost, HostPlan>,
  opts: DeployOptions
): Promise<void> {
  const failedHost =
    fleet.hosts.find(h => h.result.status === 'failed' || h.result.status === 'rolled-back')?.label ??
    'another host'
  await Promise.all(
    fleet.hosts
      .filter(h => h.result.status === 'deployed')
      .map(async h => {
        const m = plans.get(h)!
        if (!m.prev) {
          h.result.message = `stays on ${m.meta.version}: no previous release to go back to`
          return
        }
        opts.log.info(
          `${h.label}: ${failedHost} failed; putting ${m.prev.version} back so all hosts run one version`
        )
        if (!h.store.connected) {
          try {
            await reconnect(fleet, h, 'deploy')
          } catch (e) {
            h.result.status = 'failed'
            h.result.message = `went live with ${m.meta.version}, but ${failedHost} failed and this host cannot be reached to go back: ${errorMessage(e).split('\n')[0]}`
            return
          }
        }
        const txn = newTxn()
        let out = await transact(h.store, h.runtime, {
          kind: 'deploy',
          txn,
          target: m.prev,
          live: m.meta,
          liveFrom: m.prev.id,
          health: m.meta.updated,
          healthTimeout: opts.healthTimeout,
          healthOpts: { stableSec: opts.stableSeconds },
          registry: opts.registry,
          okEvent: 'revert',
          okFrom: m.prevFrom,
          okFromVersion: m.prevFrom ? h.state.releases.get(m.prevFrom)?.version : undefined,
          okExtra: { attempted: m.meta.id, attemptedVersion: m.meta.version, reason: `${failedHost} failed` },
          autoRollback: true,
          actor: opts.actor,
          runUrl: opts.runUrl,
          onStep: opts.onStep,
          log: prefixed(opts.log, `${h.label}: `)
        })
        if (out.state === 'lost') out = await settle(fleet, h, txn, 'deploy')
        if (out.state === 'committed') {
          h.result.status = 'reverted'
          h.result.message = `went back to ${m.prev.version} because ${failedHost} failed`
        } else {
          h.result.status = 'failed'
          h.result.message = `could not go back to ${m.prev.version} after ${failedHost} failed: ${out.message}`
        }
      })
  )
}

function result(
  fleet: Fleet,
  ok: boolean,
  releaseId: string,
  version: string,
  pinned: Record<string, string>,
  plans: Map<FleetHost, HostPlan>
): DeployResult {
  const hosts: HostResult[] = fleet.hosts.map(h => h.result)
  const first = fleet.hosts[0]
  const m = first ? plans.get(first) : undefined
  const images = m ? m.meta.images : pinned
  if (ok)
    return {
      status: 'deployed',
      releaseId,
      version,
      previousVersion: m?.prev?.version ?? '',
      images,
      hosts,
      connections: fleet.hosts.length
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
    connections: fleet.hosts.length
  }
}

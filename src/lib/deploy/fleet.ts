/**
 * Several hosts at once: connect and lock every host first (a bad host key, a refused login or a held
 * lock stops everything before any change), then the first host alone as canary, then the rest
 * `maxParallel` at a time. When a host fails, no further host starts, and every host that had already
 * switched goes back to its previous release, so all hosts end on one version.
 */
import { errorMessage } from '../errors.js'
import { ComposeHost, type HostState } from '../compose/host.js'
import type { Common, HostResult } from './types.js'

export interface FleetHost {
  label: string
  ch: ComposeHost
  state: HostState
  result: HostResult
  started: number
}

export async function openFleet(opts: Common, owner: string): Promise<FleetHost[]> {
  const fleet: FleetHost[] = []
  const remotes = await Promise.allSettled(opts.hosts.map(h => opts.connect(h)))
  const failed = remotes.find(r => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (failed) {
    await Promise.all(
      remotes.map(r => (r.status === 'fulfilled' ? r.value.close().catch(() => undefined) : undefined))
    )
    throw failed.reason
  }
  const hosts = remotes.map((r, i) => {
    const remote = (r as PromiseFulfilledResult<Awaited<ReturnType<Common['connect']>>>).value
    return {
      label: opts.hosts[i],
      ch: (opts.makeHost ?? ((r, o) => new ComposeHost(r, o)))(remote, {
        path: opts.path,
        project: opts.project,
        log: opts.log
      })
    }
  })
  const locked = await Promise.allSettled(hosts.map(h => h.ch.lock(opts.lockTimeout, owner)))
  const lockErr = locked.find(r => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (lockErr) {
    await Promise.all(
      hosts.map(async (h, i) =>
        locked[i].status === 'fulfilled' ? h.ch.finish().catch(() => undefined) : undefined
      )
    )
    await Promise.all(hosts.map(h => h.ch.remote.close().catch(() => undefined)))
    throw lockErr.reason
  }
  hosts.forEach((h, i) => {
    const state = (locked[i] as PromiseFulfilledResult<HostState>).value
    fleet.push({
      ...h,
      state,
      started: Date.now(),
      result: { host: h.label, status: 'skipped', durationMs: 0, execs: 0, compose: state.compose }
    })
  })
  return fleet
}

/** Runs `run` on the canary, then on the rest with a pool; stops starting hosts after the first failure. */
export async function rollOut(
  fleet: FleetHost[],
  maxParallel: number,
  run: (h: FleetHost) => Promise<boolean>
): Promise<boolean> {
  let ok = true
  const one = async (h: FleetHost): Promise<void> => {
    h.started = Date.now()
    try {
      if (!(await run(h))) ok = false
    } catch (e) {
      ok = false
      h.result.status = 'failed'
      h.result.message = errorMessage(e).split('\n')[0]
    }
    h.result.durationMs = Date.now() - h.started
  }
  if (fleet.length === 0) return true
  await one(fleet[0])
  let next = 1
  const workers = Array.from({ length: Math.max(1, Math.min(maxParallel, fleet.length - 1)) }, async () => {
    while (ok && next < fleet.length) await one(fleet[next++])
  })
  await Promise.all(workers)
  return ok
}

/** Lets every lock go (pruning where asked) and closes every connection; never throws. */
export async function closeFleet(
  fleet: FleetHost[],
  prune?: (h: FleetHost) => { releases: string[]; images: string[] } | undefined
): Promise<void> {
  await Promise.all(
    fleet.map(async h => {
      try {
        const out = await h.ch.finish(prune?.(h) ?? {})
        for (const l of out) h.ch.log.info(`${h.label}: ${l}`)
      } catch (e) {
        h.ch.log.warning(
          `${h.label}: could not finish cleanly (${errorMessage(e)}); the lock ends with the connection`
        )
      }
      h.result.execs = h.ch.execs
      await h.ch.remote.close().catch(() => undefined)
    })
  )
}

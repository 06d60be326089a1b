/**
 * Several hosts at once: connect and lock every host first (a bad host key, a refused login or a held
 * lock stops everything before any change), then the first host alone as canary, then the rest
 * `maxParallel` at a time. When a host fails, no further host starts, and every host that had already
 * switched goes back to its previous release, so all hosts end on one version.
 *
 * A host whose link died mid-transaction is *settled*: connect again, take its lock (which waits until
 * its lock holder has closed the transaction by itself) and read the verdict from its journal.
 */
import { errorMessage } from '../errors.js'
import { mapLimit } from '../pool.js'
import { ReleaseStore, type HostState } from '../release/store.js'
import { ComposeRuntime } from '../runtime/compose.js'
import type { Runtime } from '../runtime/runtime.js'
import type { Common, HostResult, StepEvent } from './types.js'
import type { Outcome } from './transaction.js'

export interface FleetHost {
  label: string
  store: ReleaseStore
  runtime: Runtime
  state: HostState
  result: HostResult
  started: number
}

export interface Fleet {
  hosts: FleetHost[]
  opts: Common
  owner: string
}

const emit = async (opts: Common, e: StepEvent): Promise<void> => {
  await opts.onStep?.(e)
}

async function openHost(
  opts: Common,
  label: string,
  owner: string,
  kind: StepEvent['kind']
): Promise<FleetHost> {
  const remote = await opts.connect(label)
  const store = new ReleaseStore(remote, { path: opts.path, project: opts.project, log: opts.log })
  const runtime = (opts.runtime ?? (s => new ComposeRuntime(s)))(store)
  try {
    await emit(opts, { host: label, kind, step: 'lock', phase: 'start' })
    const state = await store.lock(opts.lockTimeout, owner)
    runtime.accept(state)
    await emit(opts, { host: label, kind, step: 'lock', phase: 'end' })
    return {
      label,
      store,
      runtime,
      state,
      started: Date.now(),
      result: { host: label, status: 'skipped', durationMs: 0, execs: 0, compose: state.compose }
    }
  } catch (e) {
    await store.finish().catch(() => undefined)
    await remote.close().catch(() => undefined)
    throw e
  }
}

export async function openFleet(opts: Common, owner: string, kind: StepEvent['kind']): Promise<Fleet> {
  const opened = await Promise.allSettled(opts.hosts.map(h => openHost(opts, h, owner, kind)))
  const failed = opened.find(r => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (failed) {
    await Promise.all(
      opened.map(async r => {
        if (r.status !== 'fulfilled') return
        await r.value.store.finish().catch(() => undefined)
        await r.value.store.remote.close().catch(() => undefined)
      })
    )
    throw failed.reason
  }
  return { hosts: opened.map(r => (r as PromiseFulfilledResult<FleetHost>).value), opts, owner }
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
  await mapLimit(fleet.slice(1), maxParallel, one, { stop: () => !ok })
  return ok
}

/**
 * Connects to a host again after its link was lost and takes its lock (which waits until the old lock
 * holder has closed any open transaction); the host's store, runtime and state become the new ones.
 */
export async function reconnect(fleet: Fleet, h: FleetHost, kind: StepEvent['kind']): Promise<void> {
  const old = h.store
  await old.remote.close().catch(() => undefined)
  const fresh = await openHost(fleet.opts, h.label, fleet.owner, kind)
  fresh.store.execs += old.execs
  h.store = fresh.store
  h.runtime = fresh.runtime
  h.state = fresh.state
}

/**
 * After a lost link: connect again, take the lock (the old lock holder lets it go only once it has
 * closed the transaction), and return the final journal entry of `txn`. The host's store, runtime and
 * state are replaced by the new connection's, so the fleet goes on using it.
 */
export async function settle(
  fleet: Fleet,
  h: FleetHost,
  txn: string,
  kind: StepEvent['kind']
): Promise<Outcome & { event?: string }> {
  const old = h.store
  try {
    await reconnect(fleet, h, kind)
  } catch (e) {
    return {
      state: 'lost',
      message: `lost the connection and could not connect again to read what the host did (${errorMessage(e).split('\n')[0]}); its lock holder closes the transaction by itself: check ${old.layout.ledger}`
    }
  }
  const fresh = h
  const mine = fresh.state.ledger.filter(e => e.txn === txn)
  const final = [...mine].reverse().find(e => e.event !== 'begin')
  const where = `(read from the host's journal after the connection was lost)`
  if (mine.length === 0)
    return {
      state: 'aborted',
      message: `the connection was lost before the transaction began; nothing on the host changed ${where}`
    }
  if (!final)
    return {
      state: 'failed',
      message: `the connection was lost and the transaction is still open on the host (its lock holder did not close it) ${where}; the next deploy or rollback closes it`
    }
  const ev = final.event
  if (
    ev === 'deploy' ||
    ev === 'rollback' ||
    ev === 'revert' ||
    (ev === 'auto-rollback' && final.release === final.attempted)
  )
    return { state: 'committed', event: ev }
  if (ev === 'recovered' || ev === 'auto-rollback')
    return {
      state: 'put-back',
      event: ev,
      message: `the connection was lost; the host put ${final.version ?? final.release} back by itself ${where}`
    }
  if (ev === 'aborted')
    return {
      state: 'aborted',
      event: ev,
      message: `the connection was lost before anything live changed ${where}`
    }
  return { state: 'failed', event: ev, message: `${final.reason ?? 'failed'} ${where}` }
}

/** Lets every lock go (pruning where asked) and closes every connection; never throws. */
export async function closeFleet(
  fleet: Fleet,
  prune?: (h: FleetHost) => { releases: string[]; images: string[] } | undefined,
  kind: StepEvent['kind'] = 'deploy'
): Promise<void> {
  await Promise.all(
    fleet.hosts.map(async h => {
      try {
        await emit(fleet.opts, { host: h.label, kind, step: 'finish', phase: 'start' })
        const out = await h.store.finish(prune?.(h) ?? {})
        for (const l of out) h.store.log.info(`${h.label}: ${l}`)
        await emit(fleet.opts, { host: h.label, kind, step: 'finish', phase: 'end' })
      } catch (e) {
        h.store.log.warning(
          `${h.label}: could not finish cleanly (${errorMessage(e)}); the lock ends with the connection`
        )
      }
      h.result.execs = h.store.execs
      await h.store.remote.close().catch(() => undefined)
    })
  )
}

/**
 * A Runtime starts containers for a release; the ReleaseStore (src/lib/release/store.ts) keeps releases.
 * Three implementations sit side by side, none inheriting from another: compose (recreate, Compose v1/v2),
 * blue-green (slots behind nginx, ./blue-green.ts) and swarm (`docker stack deploy`, ./swarm.ts). The
 * transaction (src/lib/deploy/transaction.ts) drives them through the same steps:
 *
 *   accept(facts) → prepareFiles → ensureImages → start (recovery armed) → waitHealthy
 *   → close, with cutOverArgv run inside the store's close step → afterClose
 *   on failure: restore(previous) → close with the outcome
 */
import { errorMessage, type UserError } from '../errors.js'
import type { HostState, ReleaseMeta, ReleaseStore } from '../release/store.js'
import { probeFailure, probePort, type ProbeOptions, type ProbeRecord } from '../smoke/probe.js'
import type { CanaryOptions, CanaryRun } from '../strategy/canary.js'

export interface HealthResult {
  ok: boolean
  /** healthy, failed, timeout, … */
  result: string
  /** the last state line */
  state: string
  /** failing services with the last log lines of their containers */
  logs: string
  /** the probe's checks, when one ran (HealthOptions.probe) */
  probe?: ProbeRecord
  /** the canary's steps and figures, when one walked (HealthOptions.canary) */
  canary?: CanaryRun
}

export interface RegistryLogin {
  registry: string
  username: string
  password: string
}

export interface HealthOptions {
  stableSec?: number
  tail?: number
  /** smoke checks through the SSH connection once the containers are healthy (deploys only, not put-backs) */
  probe?: ProbeOptions
  /** blue-green deploys: the weighted steps before the close step's switch (not put-backs, not rollbacks) */
  canary?: CanaryOptions
}

/** A healthy result probed on `port` (when a probe is asked for): unhealthy when the probe fails. */
export async function withProbe(
  store: ReleaseStore,
  h: HealthResult,
  port: number | undefined,
  opts: HealthOptions | undefined
): Promise<HealthResult> {
  const probe = opts?.probe
  if (!h.ok || !probe || port === undefined) return h
  const rec = await probePort(store.remote, port, probe, store.log)
  if (rec.passed) return { ...h, state: `${h.state}; probe passed (${rec.checks.length} checks)`, probe: rec }
  return {
    ok: false,
    result: 'probe-failed',
    state: probeFailure(rec),
    logs: rec.checks.join('\n'),
    probe: rec
  }
}

export interface Runtime {
  readonly name: 'compose' | 'blue-green' | 'swarm'
  /** checks the host's facts read under the lock (Compose installed, …); throws a UserError */
  accept(state: HostState): void
  /** the release files as this runtime needs them on the host (swarm rewrites the override) */
  prepareFiles(meta: ReleaseMeta, files: { name: string; data: string }[]): { name: string; data: string }[]
  /** images present stay; missing ones are pulled; returns the pulled refs */
  ensureImages(refs: string[], auth?: RegistryLogin): Promise<string[]>
  /**
   * Brings `meta` up (only `services` when given), with `recover` armed as the store's recovery. Throws
   * when the command fails; what was live may have changed then (recreate), or not (blue-green).
   */
  start(meta: ReleaseMeta, services: string[] | undefined, recover: string): Promise<void>
  waitHealthy(
    meta: ReleaseMeta,
    services: string[],
    timeoutSec: number,
    opts?: HealthOptions
  ): Promise<HealthResult>
  /** argv run inside the store's close step before `current` moves (blue-green: nginx → the new slot) */
  cutOverArgv(meta: ReleaseMeta): string[]
  /** after the close: drain and stop what no longer serves; returns lines for the log */
  afterClose(meta: ReleaseMeta): Promise<string[]>
  /** puts a kept release back (health-gated), `recover` armed; false when it is not healthy */
  restore(
    meta: ReleaseMeta,
    services: string[],
    timeoutSec: number,
    recover: string,
    opts?: HealthOptions
  ): Promise<HealthResult>
  /** shell lines that bring `meta` back without the runner (the store's recovery script) */
  restoreLines(meta: ReleaseMeta): string[]
  /**
   * argv of a one-off container of `meta`'s `service` running `argv` (the release command), named `name`,
   * on the project's network; `withDeps`: start the services it depends on (only when nothing is live).
   * Throws a UserError where the runtime has no such thing.
   */
  oneOffArgv(meta: ReleaseMeta, service: string, argv: string[], name: string, withDeps: boolean): string[]
}

export type MakeRuntime = (store: ReleaseStore) => Runtime

/**
 * The put-back of a runtime whose start replaces what runs (compose, swarm): start `meta` again with the
 * recovery armed, then wait for the services it has; a failed start is an unhealthy result, not a throw.
 */
export async function restartAndWait(
  rt: Pick<Runtime, 'start' | 'waitHealthy'>,
  meta: ReleaseMeta,
  services: string[],
  timeoutSec: number,
  recover: string,
  opts?: HealthOptions
): Promise<HealthResult> {
  try {
    await rt.start(meta, undefined, recover)
  } catch (e) {
    return { ok: false, result: 'failed', state: errorMessage(e), logs: (e as UserError).details ?? '' }
  }
  return rt.waitHealthy(
    meta,
    services.filter(s => meta.services.includes(s)),
    timeoutSec,
    opts
  )
}

import type { ReleaseCommands } from './commands.js'
import type { CommandRecord } from '../release/journal.js'
import type { Remote } from '../ssh/remote.js'
import type { ImageRef } from '../compose/validate.js'
import type { Logger } from '../log.js'
import type { MakeRuntime } from '../runtime/runtime.js'
import type { ProbeOptions } from '../smoke/probe.js'
import type { CanaryOptions, CanaryRun } from '../strategy/canary.js'
import type { MaintenanceConfig } from './maintenance.js'

export type { Logger }

export interface RegistryAuth {
  registry: string
  username: string
  password: string
}

export interface Common {
  /** host lines as the user wrote them (labels); connect() turns one into a Remote */
  hosts: string[]
  connect(host: string): Promise<Remote>
  path: string
  healthTimeout: number
  lockTimeout: number
  /** hosts at once after the first (canary) host */
  maxParallel?: number
  /** login on the host for pulls (only used when an image is missing there) */
  registry?: RegistryAuth
  actor?: string
  runUrl?: string
  log: Logger
  /** seconds a container without a healthcheck must stay running unchanged (default 5) */
  stableSeconds?: number
  /** Compose project name (default: derived from path) */
  project?: string
  /**
   * what starts containers on each host (src/lib/strategy/host.ts runtimeFactory: blue-green, swarm);
   * default the Compose runtime (recreate)
   */
  runtime?: MakeRuntime
  /** awaited at the start and end of every remote step on every host (logs, the fault-matrix tests) */
  onStep?(e: StepEvent): void | Promise<void>
}

export interface DeployOptions extends Common {
  /** local compose files, in order */
  composeFiles: string[]
  /** text of the release's .env (a secret); undefined: the previous release's .env is carried over */
  envFile?: string
  /** plain KEY=value lines merged into the .env (src/lib/deploy/env.ts) */
  env?: string
  /** secret KEY=value lines merged into the .env */
  envSecrets?: string
  /** `service=image-ref` lines */
  images: string[]
  /** only these services are updated (default all) */
  services?: string[]
  version: string
  sha?: string
  autoRollback: boolean
  keepReleases: number
  /** tag → digest through the registry (not needed for refs that carry a digest) */
  resolveDigest?(ref: ImageRef): Promise<string>
  /** called once the release is planned (images pinned), before any host is contacted */
  onPlanned?(plan: Plan): Promise<void> | void
  /** hooks on every host; the backup and the release command once, on the canary (src/lib/deploy/commands.ts) */
  commands?: ReleaseCommands
  /** smoke checks through the SSH connection before the switch (blue-green) or right after `up` (recreate) */
  probe?: ProbeOptions
  /** blue-green: the weighted canary steps, gated by the app's metrics, before the switch */
  canary?: CanaryOptions
  /** maintenance: release — the nginx maintenance page from before the release command until the switch */
  maintenance?: MaintenanceConfig
}

export interface RollbackOptions extends Common {
  /** a version or a release id; default: the release live before the current one */
  to?: string
  /**
   * the live release is being given up (ship: it failed its smoke test): the ledger records it like a
   * deploy's auto-rollback (`attempted`), and the target keeps its own predecessor as `from`, so a later
   * default rollback never goes back to the release that was given up
   */
  givingUp?: string
  /** called once the target is known on every host, before any change (not called for a no-op) */
  onPlanned?(plan: Plan): Promise<void> | void
}

export interface Plan {
  releaseId: string
  version: string
  /** service → image@sha256:… */
  images: Record<string, string>
  /** the commit the release was made from, when known */
  sha?: string
  /** rollback: the version live before */
  fromVersion?: string
}

export type HostStatus = 'deployed' | 'rolled-back' | 'failed' | 'reverted' | 'skipped' | 'unchanged'

export interface HostResult {
  host: string
  status: HostStatus
  releaseId?: string
  version?: string
  previousReleaseId?: string
  previousVersion?: string
  compose?: string
  message?: string
  /** failing containers' last log lines */
  logs?: string
  /** the .env against the live release's, by key (src/lib/deploy/env.ts envDiffLine) */
  env?: string
  /** the commands run for the release on this host (hooks; backup and release command on the canary) */
  commands?: {
    name: 'pre-deploy' | 'backup-command' | 'release-command' | 'post-deploy'
    record: CommandRecord
    ok: boolean
  }[]
  durationMs: number
  /** remote commands and file writes (round trips) */
  execs: number
  /** the canary's steps and figures on this host (deploys with canary-steps) */
  canary?: CanaryRun
}

export type DeployStatus = 'deployed' | 'rolled-back' | 'failed'

export interface DeployResult {
  status: DeployStatus
  releaseId: string
  version: string
  previousVersion: string
  images: Record<string, string>
  hosts: HostResult[]
  /** one line for the step's failure */
  error?: string
  connections: number
}

export interface RollbackResult {
  /** rolled-back, unchanged (already live: a no-op) or failed */
  status: 'rolled-back' | 'unchanged' | 'failed'
  fromVersion: string
  toVersion: string
  releaseId: string
  images: Record<string, string>
  hosts: HostResult[]
  error?: string
  connections: number
}

/** The remote steps of a deploy, rollback or ship, in the order they run on a host. */
export type RemoteStep =
  | 'lock'
  | 'upload'
  | 'pull'
  | 'pre-deploy'
  | 'backup'
  | 'release-command'
  | 'maintenance-on'
  | 'up'
  | 'health'
  | 'switch'
  | 'post-deploy'
  | 'finish'
  | 'put-back'
  | 'maintenance-off'

/**
 * A step starting or having ended on one host. Observability for logs and for the fault-matrix tests,
 * which cut the link or kill the runner at a given step; the library awaits the callback.
 */
export interface StepEvent {
  host: string
  kind: 'deploy' | 'rollback'
  step: RemoteStep
  phase: 'start' | 'end'
  /** the release the step works on (the attempted one; for put-back, the one being put back) */
  release?: string
}

/**
 * Input groups deploy-ssh, rollback and ship share beyond SSH, each read once into a typed piece: the fleet
 * (hosts, path, timeouts, strategy), registry login, GitHub Deployments and the run's facts. The actions'
 * getInputs() (src/<action>/inputs.ts) compose them; the deploy step's own inputs are in deploy-step.ts. Reads through the typed readers with literal names.
 */
import { readSshInputs, type SshInputs } from './ssh-inputs.js'
import * as inputs from './inputs.js'
import { readStrategyInputs, type StrategyInputs } from './strategy-inputs.js'
import { connectHosts } from '../lib/ssh/client.js'
import { formatTarget } from '../lib/ssh/hosts.js'
import type { Remote } from '../lib/ssh/remote.js'
import type { MakeRuntime } from '../lib/runtime/runtime.js'
import type { Common, RegistryAuth } from '../lib/deploy/types.js'
import { runUrl } from '../lib/github/run.js'
import type { DeploymentOptions } from './deployments.js'

/** What the run itself says: who started it, its web URL, its commit. */
export interface RunFacts {
  actor?: string
  runUrl?: string
  sha?: string
}

export function runFacts(env: Record<string, string | undefined> = process.env): RunFacts {
  return { actor: env.GITHUB_ACTOR || undefined, runUrl: runUrl(env), sha: env.GITHUB_SHA || undefined }
}

/** `hosts` and the SSH inputs, `path`, the timeouts, `max-parallel`, `strategy`/`target`. */
export interface FleetInputs {
  ssh: SshInputs
  /** host labels as formatTarget() writes them */
  hosts: string[]
  path: string
  healthTimeout: number
  lockTimeout: number
  maxParallel: number
  /** strategy (recreate | blue-green) and target (compose | swarm): src/action/strategy-inputs.ts */
  runtime?: MakeRuntime
  target: 'compose' | 'swarm'
  strategy: StrategyInputs['strategy']
  slotServices: string[]
}

export function readFleetInputs(): FleetInputs {
  const ssh = readSshInputs()
  return {
    ssh,
    hosts: ssh.targets.map(formatTarget),
    path: inputs.str('path'),
    healthTimeout: inputs.int('health-timeout', 120, { min: 1, max: 3600 }),
    lockTimeout: inputs.int('lock-timeout', 300, { min: 0, max: 86400 }),
    maxParallel: inputs.int('max-parallel', 1, { min: 1, max: 100 }),
    ...readStrategyInputs()
  }
}

/** The library's fleet options: one connect() for all hosts at once (one bastion connection shared). */
export type FleetOptions = Omit<Common, 'log' | 'registry'>

export function fleetOptions(fleet: FleetInputs, facts: RunFacts): FleetOptions {
  const { targets, options } = fleet.ssh
  let pending: Promise<Remote[]> | undefined
  // all hosts at once the first time; a host whose connection is gone (a lost link) gets a new one
  const connect = async (label: string): Promise<Remote> => {
    pending ??= connectHosts(targets, options)
    const all = await pending
    const i = fleet.hosts.indexOf(label)
    if (all[i].isOpen?.() === false) [all[i]] = await connectHosts([targets[i]], options)
    return all[i]
  }
  return {
    hosts: fleet.hosts,
    connect,
    path: fleet.path,
    healthTimeout: fleet.healthTimeout,
    lockTimeout: fleet.lockTimeout,
    maxParallel: fleet.maxParallel,
    ...(fleet.runtime ? { runtime: fleet.runtime } : {}),
    ...facts
  }
}

/** `registry`, `registry-username` (default the actor), `registry-password` (masked). */
export interface RegistryInputs {
  registry: string
  username: string
  password: string
}

export function readRegistryInputs(): RegistryInputs {
  return {
    registry: inputs.str('registry'),
    username: inputs.str('registry-username', process.env.GITHUB_ACTOR ?? ''),
    password: inputs.secret('registry-password')
  }
}

/** Registry login for pulls on the host: only when a password is given and a registry is known. */
export function registryAuth(reg: RegistryInputs, fallbackRegistry?: string): RegistryAuth | undefined {
  const host = reg.registry || fallbackRegistry || ''
  return reg.password && host
    ? { registry: host, username: reg.username || 'token', password: reg.password }
    : undefined
}

/** `environment`, `environment-url`, `github-token` (masked); the log URL is the run's. */
export type DeploymentInputs = DeploymentOptions

export function readDeploymentInputs(facts: RunFacts = runFacts()): DeploymentInputs {
  return {
    environment: inputs.str('environment'),
    environmentUrl: inputs.str('environment-url') || undefined,
    token: inputs.secret('github-token'),
    logUrl: facts.runUrl
  }
}

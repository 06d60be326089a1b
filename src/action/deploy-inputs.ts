/**
 * Inputs deploy-ssh, rollback (and ship) share beyond SSH: the fleet (hosts → connections), path, timeouts,
 * registry login, GitHub Deployments and run facts. Reads through the typed readers with literal names.
 */
import * as core from '@actions/core'
import { readSshInputs } from './ssh-inputs.js'
import * as inputs from './inputs.js'
import { readStrategyInputs } from './strategy-inputs.js'
import { connectHosts } from '../lib/ssh/client.js'
import { formatTarget } from '../lib/ssh/hosts.js'
import type { Remote } from '../lib/ssh/remote.js'
import type { Common, Logger, RegistryAuth } from '../lib/deploy/types.js'
import type { DeploymentOptions } from './deployments.js'

export const actionLog: Logger = { info: m => core.info(m), warning: m => core.warning(m) }

export function runFacts(): { actor?: string; runUrl?: string; sha?: string } {
  const env = process.env
  const runUrl =
    env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID
      ? `${env.GITHUB_SERVER_URL || 'https://github.com'}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
      : undefined
  return { actor: env.GITHUB_ACTOR || undefined, runUrl, sha: env.GITHUB_SHA || undefined }
}

/** Hosts, SSH connection (all hosts at once, one bastion connection shared), path, timeouts. */
export function readFleetInputs(): Omit<Common, 'log' | 'registry'> {
  const ssh = readSshInputs()
  const labels = ssh.targets.map(formatTarget)
  let pending: Promise<Remote[]> | undefined
  // all hosts at once the first time; a host whose connection is gone (a lost link) gets a new one
  const connect = async (label: string): Promise<Remote> => {
    pending ??= connectHosts(ssh.targets, ssh.options)
    const all = await pending
    const i = labels.indexOf(label)
    if (all[i].isOpen?.() === false) [all[i]] = await connectHosts([ssh.targets[i]], ssh.options)
    return all[i]
  }
  return {
    hosts: labels,
    connect,
    path: inputs.str('path'),
    healthTimeout: inputs.int('health-timeout', 120, { min: 1, max: 3600 }),
    lockTimeout: inputs.int('lock-timeout', 300, { min: 0, max: 86400 }),
    maxParallel: inputs.int('max-parallel', 1, { min: 1, max: 100 }),
    // strategy (recreate | blue-green) and target (compose | swarm): src/action/strategy-inputs.ts
    ...readStrategyInputs(),
    ...runFacts()
  }
}

/** Registry login for pulls on the host: only when a password is given. */
export function readRegistryInputs(fallbackRegistry?: string): {
  auth?: RegistryAuth
  username: string
  password: string
  registry: string
} {
  const registry = inputs.str('registry')
  const username = inputs.str('registry-username', process.env.GITHUB_ACTOR ?? '')
  const password = inputs.secret('registry-password')
  const host = registry || fallbackRegistry || ''
  const auth = password && host ? { registry: host, username: username || 'token', password } : undefined
  return { auth, username, password, registry }
}

export function readDeploymentInputs(): DeploymentOptions {
  return {
    environment: inputs.str('environment'),
    environmentUrl: inputs.str('environment-url') || undefined,
    token: inputs.secret('github-token'),
    logUrl: runFacts().runUrl
  }
}

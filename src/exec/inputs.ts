/**
 * exec's inputs, read once, typed and checked before anything connects: the SSH inputs of deploy-ssh,
 * `path`, `service`, `command`, `timeout`, and exec's own (`max-parallel`, `fail-on-error`, `output-limit`,
 * `lock`, `lock-timeout`, `mask`). `mask` is read first: its values are masked before anything can log them.
 */
import * as inputs from '../action/inputs.js'
import { readSshInputs, type SshInputs } from '../action/ssh-inputs.js'
import { validateProjectPath } from '../lib/compose/validate.js'
import { checkCommand, checkService } from '../lib/exec/index.js'
import { runUrl } from '../lib/github/run.js'
import { formatTarget } from '../lib/ssh/hosts.js'

export interface ExecInputs {
  ssh: SshInputs
  /** host labels as formatTarget() writes them */
  hosts: string[]
  path: string
  /** undefined: on the host */
  service?: string
  command: string
  /** seconds */
  timeout: number
  maxParallel: number
  failOnError: boolean
  /** bytes of each stream kept per host */
  outputLimit: number
  lock: boolean
  /** seconds, with `lock` */
  lockTimeout: number
  /** the lock owner line another run waiting on the lock sees */
  owner: string
}

export function getInputs(env: Record<string, string | undefined> = process.env): ExecInputs {
  inputs.secret('mask')
  const ssh = readSshInputs()
  const path = validateProjectPath(inputs.str('path'))
  const service = checkService(inputs.str('service'))
  const command = checkCommand(inputs.str('command'))
  const timeout = inputs.int('timeout', 300, { min: 1, max: 86400 })
  const maxParallel = inputs.int('max-parallel', 10, { min: 1, max: 100 })
  const failOnError = inputs.bool('fail-on-error', true)
  const outputLimit = inputs.int('output-limit', 65536, { min: 1024, max: 1048576 })
  const lock = inputs.bool('lock', false)
  const lockTimeout = inputs.int('lock-timeout', 300, { min: 0, max: 86400 })
  const owner = `${env.GITHUB_ACTOR || 'someone'} ${runUrl(env) ?? ''} exec`.replace(/\s+/g, ' ').trim()
  return {
    ssh,
    hosts: ssh.targets.map(formatTarget),
    path,
    service,
    command,
    timeout,
    maxParallel,
    failOnError,
    outputLimit,
    lock,
    lockTimeout,
    owner
  }
}

/** exec: runs a command on the hosts of a deploy. Launched by ./index.ts; importing runs nothing. */
import * as core from '@actions/core'
import { maskSecret } from '../action/inputs.js'
import { coreLog } from '../action/log.js'
import { redacted } from '../action/secrets.js'
import { UserError } from '../lib/errors.js'
import { execOnHosts, execSummary, failureReason, hostConnector, resultsJson } from '../lib/exec/index.js'
import { getInputs } from './inputs.js'

/** How many failed hosts the one-line failure names before "and N more". */
const NAMED = 5

export async function run(): Promise<void> {
  const inp = getInputs()
  const { connect } = hostConnector(inp.ssh.targets, inp.ssh.options)
  const where = inp.service ? `in service ${inp.service}` : 'on the host'
  core.info(
    `exec ${where} on ${inp.hosts.length} host(s), ${inp.timeout}s limit: ${inp.command.split('\n')[0]}`
  )
  const result = await execOnHosts({
    hosts: inp.hosts,
    connect,
    path: inp.path,
    service: inp.service,
    command: inp.command,
    timeoutSec: inp.timeout,
    maxParallel: inp.maxParallel,
    outputLimit: inp.outputLimit,
    lock: inp.lock,
    lockTimeoutSec: inp.lockTimeout,
    owner: inp.owner,
    log: coreLog,
    addSecret: maskSecret,
    redact: redacted
  })
  // outputs and the summary first: they are there when the step fails
  core.setOutput('results', resultsJson(result))
  core.setOutput('failed-hosts', result.failed.join('\n'))
  await core.summary
    .addRaw(execSummary(result, { command: inp.command, service: inp.service, path: inp.path }))
    .write()
  const failed = result.hosts.filter(h => !h.ok)
  if (failed.length === 0) {
    core.info(`ok on ${result.hosts.length} host(s)`)
    return
  }
  const named = failed
    .slice(0, NAMED)
    .map(h => `${h.host} (${failureReason(h).slice(0, 120)})`)
    .join(', ')
  const more = failed.length > NAMED ? ` and ${failed.length - NAMED} more` : ''
  const message = redacted(
    `exec failed on ${failed.length} of ${result.hosts.length} host(s): ${named}${more}; see the 'results' output and the job summary.`
  )
  if (inp.failOnError) throw new UserError(message)
  core.warning(`${message} (fail-on-error: false, the step passes)`)
}

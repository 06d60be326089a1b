/** rollback: puts a kept release back on every host. Launched by ./index.ts; importing runs nothing. */
import * as core from '@actions/core'
import { fleetOptions, registryAuth } from '../action/deploy-inputs.js'
import { startDeployment } from '../action/deployments.js'
import { coreLog } from '../action/log.js'
import { UserError } from '../lib/errors.js'
import { rollback, summaryTable } from '../lib/deploy/index.js'
import { getInputs } from './inputs.js'

export async function run(): Promise<void> {
  const inp = getInputs()
  let record: Awaited<ReturnType<typeof startDeployment>> | undefined
  const result = await rollback({
    ...fleetOptions(inp.fleet, inp.facts),
    log: coreLog,
    registry: registryAuth(inp.registry),
    to: inp.to,
    onPlanned: async plan => {
      record = await startDeployment(inp.deployment, {
        ref: plan.sha || inp.facts.sha || plan.version,
        version: plan.version,
        releaseId: plan.releaseId,
        images: plan.images,
        task: 'deploy:rollback',
        description: `shipline rollback ${plan.fromVersion ?? ''} → ${plan.version}`,
        extra: { rollback: true, from_version: plan.fromVersion ?? null }
      })
    }
  }).catch(async e => {
    await record?.finish(
      'error',
      `rollback failed: ${String(e instanceof Error ? e.message : e).slice(0, 100)}`
    )
    throw e
  })
  core.setOutput('from-version', result.fromVersion)
  core.setOutput('to-version', result.toVersion)
  core.setOutput('release-id', result.releaseId)
  core.setOutput('status', result.status)
  await core.summary
    .addRaw(
      summaryTable(`rollback: ${result.status}`, result.hosts, [
        ['path', inp.fleet.path],
        ['from', result.fromVersion || '—'],
        ['to', `${result.toVersion} (${result.releaseId})`]
      ])
    )
    .write()
  await record?.finish(
    result.status === 'failed' ? 'failure' : 'success',
    result.status === 'failed' ? (result.error ?? 'failed') : `${result.toVersion} is live again`
  )
  if (result.status === 'failed') throw new UserError(result.error ?? 'rollback failed')
  core.info(
    result.status === 'unchanged'
      ? `${result.toVersion} is already live: nothing to do`
      : `rolled back to ${result.toVersion} (${result.releaseId})`
  )
}

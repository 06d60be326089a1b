/** deploy-ssh: the deploy step (src/action/deploy-step.ts). Launched by ./index.ts; importing runs nothing. */
import * as core from '@actions/core'
import { deployStep } from '../action/deploy-step.js'
import { UserError } from '../lib/errors.js'
import { getInputs } from './inputs.js'
import { maintenanceStep, readMaintenanceMode } from '../action/maintenance-step.js'

export async function run(): Promise<void> {
  const mode = readMaintenanceMode()
  if (mode === 'on' || mode === 'off') return maintenanceStep(mode)
  const { result, version, record } = await deployStep(getInputs())
  await record?.finish(
    result.status === 'deployed' ? 'success' : 'failure',
    result.status === 'deployed' ? `${version} is live` : (result.error ?? result.status)
  )
  if (result.status !== 'deployed') throw new UserError(result.error ?? `deploy ${result.status}`)
  core.info(`deployed ${version} (${result.releaseId}) to ${result.hosts.length} host(s)`)
}

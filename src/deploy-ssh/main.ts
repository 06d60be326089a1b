import * as core from '@actions/core'
import { runAction } from '../action/run.js'
import { deployStep } from '../action/deploy-step.js'
import { UserError } from '../lib/errors.js'

async function main(): Promise<void> {
  const { result, version, record } = await deployStep()
  await record?.finish(
    result.status === 'deployed' ? 'success' : 'failure',
    result.status === 'deployed' ? `${version} is live` : (result.error ?? result.status)
  )
  if (result.status !== 'deployed') throw new UserError(result.error ?? `deploy ${result.status}`)
  core.info(`deployed ${version} (${result.releaseId}) to ${result.hosts.length} host(s)`)
}

await runAction(main, async () => {
  // nothing to undo here: the host lock lives only as long as main's SSH connection, and the temporary
  // registry login on the host is removed with it
})

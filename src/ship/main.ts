/**
 * ship (the root action): deploy-ssh, then smoke-test against `smoke-url`; when the smoke test fails, the
 * release that was live before is put back (health-gated, recorded in the ledger and on the GitHub
 * Deployment) and the step fails with both reasons. The same library code as the separate actions. The
 * host locks are held from the deploy through the smoke test and the put-back: no other deploy can land
 * in between and be overwritten. Launched by ./index.ts; importing this module runs nothing.
 */
import * as core from '@actions/core'
import { deployStep, type DeployStep } from '../action/deploy-step.js'
import { smokeStep } from '../action/smoke-step.js'
import type { SmokeInputs } from '../action/smoke-inputs.js'
import { coreLog } from '../action/log.js'
import { UserError } from '../lib/errors.js'
import { releaseDeploy, rollbackOn, summaryTable } from '../lib/deploy/index.js'
import { getInputs } from './inputs.js'

export async function run(): Promise<void> {
  const inputs = getInputs()
  const step = await deployStep(inputs.deploy, { hold: true })
  const held = step.held!
  try {
    await shipAfterDeploy(step, inputs.smoke)
  } finally {
    await releaseDeploy(held, { keepReleases: step.keepReleases })
  }
}

async function shipAfterDeploy(step: DeployStep, smokeInputs: SmokeInputs): Promise<void> {
  const { result, version, record, registryAuth, fleet } = step
  const held = step.held!
  if (result.status !== 'deployed') {
    core.setOutput('smoke-passed', 'false')
    await record?.finish('failure', result.error ?? result.status)
    throw new UserError(result.error ?? `deploy ${result.status}`)
  }

  const smoke = await smokeStep(smokeInputs)
  core.setOutput('smoke-passed', String(smoke.report.passed))
  if (smoke.report.passed) {
    await record?.finish('success', `${version} is live; smoke test passed`)
    core.info(`shipped ${version} (${result.releaseId}); smoke test: ${smoke.line}`)
    return
  }

  // The smoke test failed: put back what was live before this release, on every host.
  const smokeReason = `smoke test failed: ${smoke.line}${smoke.firstFailure ? ` (${smoke.firstFailure})` : ''}`
  core.error(smokeReason)
  const previous = result.hosts.find(h => h.previousReleaseId)?.previousReleaseId
  if (!previous) {
    core.setOutput('status', 'failed')
    await record?.finish('failure', smokeReason.slice(0, 140))
    throw new UserError(
      `${smokeReason}; this was the first release on the host, so there is nothing to put back. Fix the release and deploy again.`
    )
  }
  core.info(`putting back release ${previous} (${result.previousVersion}) …`)
  const back = await rollbackOn(held.fleet, {
    ...fleet, // the same connections and locks as the deploy: no input is read again
    log: coreLog,
    registry: registryAuth,
    to: previous,
    givingUp: smokeReason
  })
  await core.summary
    .addRaw(
      summaryTable(`ship: put back after the failed smoke test: ${back.status}`, back.hosts, [
        ['from', version],
        ['to', `${back.toVersion} (${back.releaseId})`]
      ])
    )
    .write()
  if (back.status === 'failed') {
    core.setOutput('status', 'failed')
    await record?.finish('failure', `${smokeReason}; putting back failed`.slice(0, 140))
    throw new UserError(
      `${smokeReason}; and putting back ${result.previousVersion} failed too: ${back.error ?? 'see the summary'}. The hosts need a look.`
    )
  }
  core.setOutput('status', 'rolled-back')
  core.setOutput('release-id', back.releaseId)
  await record?.finish('failure', `${smokeReason}; ${back.toVersion} put back`.slice(0, 140))
  throw new UserError(
    `${smokeReason}; the previous release ${back.toVersion} was put back and is healthy. Fix the release and ship again.`
  )
}

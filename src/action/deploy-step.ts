/**
 * The deploy step shared by deploy-ssh and ship: reads deploy-ssh's inputs, pins images through the
 * registry, deploys the release over the fleet, records a GitHub Deployment, sets the deploy outputs and
 * writes the summary. The caller decides when the step has failed and finishes the Deployment record.
 */
import * as core from '@actions/core'
import { resolve } from 'node:path'
import * as inputs from './inputs.js'
import {
  actionLog,
  readDeploymentInputs,
  readFleetInputs,
  readRegistryInputs,
  runFacts
} from './deploy-inputs.js'
import { startDeployment, type DeploymentRecord } from './deployments.js'
import {
  deployHeld,
  releaseDeploy,
  summaryTable,
  type DeployResult,
  type HeldDeploy,
  type Plan
} from '../lib/deploy/index.js'
import { parseImagesInput, type ImageRef } from '../lib/compose/validate.js'
import { RegistryClient, RegistryError } from '../lib/registry/index.js'
import { credentialRegistry } from '../lib/deploy/release.js'
import { UserError } from '../lib/errors.js'

export interface DeployStep {
  result: DeployResult
  version: string
  /** the GitHub Deployment (a no-op when no environment is set), still to be finished */
  record?: DeploymentRecord
  registry: ReturnType<typeof readRegistryInputs>
  /** the fleet inputs as read (ship's put-back uses them again) */
  fleet: ReturnType<typeof readFleetInputs>
  /** with `hold`: the hosts still locked, for ship's smoke test and put-back; release with releaseHeld() */
  held?: HeldDeploy
  keepReleases: number
}

/**
 * Deploys; with `hold` the host locks stay held after the deploy (ship smoke-tests and puts back under
 * the same locks, so no other deploy can slip in between), to be let go with releaseHeld().
 */
export async function deployStep(opts: { hold?: boolean } = {}): Promise<DeployStep> {
  const envFile = inputs.secret('env-file')
  // each value of the .env is a secret of its own too (an app may log it bare); short ones would garble logs
  for (const line of envFile.split(/\r?\n/)) {
    const value = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=\s*(.*)$/
      .exec(line)?.[1]
      ?.replace(/^(['"])(.*)\1$/, '$2')
    if (value && value.length >= 6) inputs.maskSecret(value)
  }
  const fleet = readFleetInputs()
  const images = inputs.list('images', { commas: false })
  const refs = [...parseImagesInput(images).values()]
  const raw = readRegistryInputs()
  // credentials go only to the registry they are for; refused when that is ambiguous
  const scope = credentialRegistry({ registry: raw.registry, password: raw.password, images: refs })
  const reg = readRegistryInputs(scope)
  const dep = readDeploymentInputs()
  const facts = runFacts()
  const version = inputs.str('version', facts.sha ?? '')
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd()
  const clients = new Map<string, RegistryClient>()
  const resolveDigest = async (ref: ImageRef): Promise<string> => {
    // credentials only go to the registry they are for; the others are asked anonymously
    const mine = !!reg.password && scope === ref.registry
    let c = clients.get(ref.registry)
    if (!c) {
      c = new RegistryClient({
        registry: ref.registry,
        ...(mine ? { username: reg.username || 'token', password: reg.password } : {})
      })
      clients.set(ref.registry, c)
    }
    try {
      const m = await c.resolve(ref.repository, ref.tag ?? 'latest')
      return m.digest
    } catch (e) {
      if (!mine && e instanceof RegistryError && (e.status === 401 || e.status === 403))
        throw new UserError(
          `Input 'images': ${ref.raw}: ${ref.registry} needs its own login; shipline sends 'registry-password' only to ${scope ?? "the registry named in 'registry'"}. Pin the image by digest (image@sha256:…), or deploy it with its own registry credentials.`,
          e.details
        )
      throw e
    }
  }
  let record: Awaited<ReturnType<typeof startDeployment>> | undefined
  const keepReleases = inputs.int('keep-releases', 5, { min: 1, max: 100 })
  const held = await deployHeld({
    ...fleet,
    log: actionLog,
    registry: reg.auth,
    composeFiles: inputs.list('compose-file', { commas: false }).map(f => resolve(workspace, f)),
    envFile: envFile === '' ? undefined : envFile,
    images,
    services: inputs.list('services'),
    version,
    sha: facts.sha,
    autoRollback: inputs.bool('auto-rollback', true),
    keepReleases,
    resolveDigest,
    onPlanned: async (plan: Plan) => {
      core.info(
        `release ${plan.releaseId} (${plan.version}): ${
          Object.entries(plan.images)
            .map(([s, r]) => `${s}=${r}`)
            .join(', ') || 'no pinned images'
        }`
      )
      record = await startDeployment(dep, {
        ref: facts.sha || plan.version,
        version: plan.version,
        releaseId: plan.releaseId,
        images: plan.images,
        task: 'deploy',
        description: `shipline deploy ${plan.version}`
      })
    }
  }).catch(async e => {
    await record?.finish(
      'error',
      `deploy did not start: ${String(e instanceof Error ? e.message : e).slice(0, 100)}`
    )
    throw e
  })
  if (!opts.hold) await releaseDeploy(held, { keepReleases })
  const result = held.result
  core.setOutput('release-id', result.releaseId)
  core.setOutput('version', result.version)
  core.setOutput('previous-version', result.previousVersion)
  core.setOutput('images', JSON.stringify(result.images))
  core.setOutput('status', result.status)
  await core.summary
    .addRaw(
      summaryTable(`deploy-ssh: ${result.status}`, result.hosts, [
        ['path', fleet.path],
        ['version', version],
        [
          'images',
          Object.entries(result.images)
            .map(([s, r]) => `${s}=${r}`)
            .join(', ') || '—'
        ]
      ])
    )
    .write()
  return { result, version, record, registry: reg, fleet, held: opts.hold ? held : undefined, keepReleases }
}

/**
 * The deploy step shared by deploy-ssh and ship: readDeployInputs() reads deploy-ssh's inputs once; deployStep()
 * takes them, pins images through the registry, deploys the release over the fleet, records a GitHub Deployment, sets the deploy outputs and
 * writes the summary. The caller decides when the step has failed and finishes the Deployment record.
 */
import * as core from '@actions/core'
import { resolve } from 'node:path'
import * as inputs from './inputs.js'
import {
  fleetOptions,
  readDeploymentInputs,
  readFleetInputs,
  readRegistryInputs,
  registryAuth,
  runFacts,
  type DeploymentInputs,
  type FleetInputs,
  type FleetOptions,
  type RegistryInputs,
  type RunFacts
} from './deploy-inputs.js'
import { startDeployment, type DeploymentRecord } from './deployments.js'
import { coreLog } from './log.js'
import {
  deployHeld,
  releaseDeploy,
  summaryTable,
  type DeployResult,
  type HeldDeploy,
  type Plan,
  type RegistryAuth
} from '../lib/deploy/index.js'
import { parseImagesInput, type ImageRef } from '../lib/compose/validate.js'
import { credentialRegistry } from '../lib/deploy/release.js'
import { hasAttestation, parseImageReference, RegistryClient, RegistryError } from '../lib/registry/index.js'
import { UserError } from '../lib/errors.js'
import { parseHostCommand, parseReleaseCommand, type ReleaseCommands } from '../lib/deploy/commands.js'
import { planEnv } from '../lib/deploy/env.js'
import { parseProbe, type ProbeOptions } from '../lib/smoke/probe.js'
import { parseCanary, type CanaryOptions } from '../lib/strategy/canary.js'
import { gateSummary } from '../lib/gate/summary.js'
import type { MaintenanceConfig } from '../lib/deploy/maintenance.js'
import { readMaintenanceConfig, readMaintenanceMode } from './maintenance-step.js'
import { smokeSecrets } from '../lib/smoke/run.js'
import { Redactor } from '../lib/redact.js'

/** `probe-*`: parsed against the strategy, the checks' header values masked before anything logs. */
function readProbeInputs(fleet: FleetInputs): ProbeOptions | undefined {
  const probe = parseProbe(
    {
      checks: inputs.str('probe-checks'),
      port: inputs.str('probe-port'),
      service: inputs.str('probe-service'),
      timeoutSec: inputs.int('probe-timeout', 30, { min: 1, max: 3600 }),
      requestTimeoutSec: 5
    },
    fleet
  )
  if (!probe) return undefined
  const redactor = smokeSecrets(new Redactor(), { url: 'http://127.0.0.1/', checks: probe.checks })
  for (const form of redactor.forms()) core.setSecret(form)
  return { ...probe, redactor }
}

/** `canary-*`: the weighted steps of a blue-green deploy, checked against the strategy. */
function readCanaryInputs(fleet: FleetInputs): CanaryOptions | undefined {
  return parseCanary(
    {
      steps: inputs.str('canary-steps'),
      intervalSec: inputs.int('canary-interval', 30, { min: 1, max: 3600 }),
      rules: inputs.str('canary-rules'),
      service: inputs.str('canary-service'),
      metricsPath: inputs.str('canary-metrics-path', '/metrics'),
      noData: inputs.str('canary-no-data', 'pass')
    },
    fleet
  )
}

/** Everything deploy-ssh reads (and ship, for its deploy part). */
export interface DeployInputs {
  /** text of the release's .env (masked, and each value of it); '' = carry the previous release's over */
  envFile: string
  /** `env`: plain KEY=value lines merged into the .env */
  env: string
  /** `env-secrets`: KEY=value lines merged into the .env, every value masked */
  envSecrets: string
  fleet: FleetInputs
  /** `service=image-ref` lines as given */
  images: string[]
  /** the same, parsed */
  imageRefs: ImageRef[]
  registry: RegistryInputs
  /** the registry `registry-password` goes to (credentialRegistry), undefined: none */
  credentialScope?: string
  deployment: DeploymentInputs
  /** compose files, resolved against GITHUB_WORKSPACE */
  composeFiles: string[]
  services: string[]
  version: string
  autoRollback: boolean
  keepReleases: number
  /** `pre-deploy`, `backup-command`, `release-command`, `post-deploy` and their time limits */
  commands: ReleaseCommands
  /** `probe-checks` & co: smoke checks through SSH before the switch (undefined: none) */
  probe?: ProbeOptions
  /** `canary-*`: blue-green's weighted steps gated by the app's metrics (undefined: switch at once) */
  canary?: CanaryOptions
  /** `require-attestation`: refuse a pinned image whose digest has no attestation referrer */
  requireAttestation: boolean
  /** `maintenance: release`: the nginx maintenance page from before the release command until the switch */
  maintenance?: MaintenanceConfig
  facts: RunFacts
}

export function readDeployInputs(): DeployInputs {
  const envFile = inputs.secret('env-file')
  // each value of the .env is a secret of its own too (an app may log it bare); short ones would garble logs
  for (const line of envFile.split(/\r?\n/)) {
    const value = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=\s*(.*)$/
      .exec(line)?.[1]
      ?.replace(/^(['"])(.*)\1$/, '$2')
    if (value && value.length >= 6) inputs.maskSecret(value)
  }
  // env-secrets: every value masked before anything can be logged; env: plain, shown in the summary
  const envSecrets = inputs.secret('env-secrets')
  for (const line of envSecrets.split(/\r?\n/)) {
    const value = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=(.*)$/.exec(line)?.[1]?.trim()
    if (value) {
      inputs.maskSecret(value)
      const unquoted = value.replace(/^(['"])(.*)\1$/, '$2')
      if (unquoted !== value && unquoted) inputs.maskSecret(unquoted)
    }
  }
  const env = inputs.str('env')
  const fleet = readFleetInputs()
  const images = inputs.list('images', { commas: false })
  const imageRefs = [...parseImagesInput(images).values()]
  const registry = readRegistryInputs()
  // credentials go only to the registry they are for; refused when that is ambiguous
  const credentialScope = credentialRegistry({
    registry: registry.registry,
    password: registry.password,
    images: imageRefs
  })
  const facts = runFacts()
  const deployment = readDeploymentInputs(facts)
  const version = inputs.str('version', facts.sha ?? '')
  const keepReleases = inputs.int('keep-releases', 5, { min: 1, max: 100 })
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd()
  const composeFiles = inputs.list('compose-file', { commas: false }).map(f => resolve(workspace, f))
  const services = inputs.list('services')
  const autoRollback = inputs.bool('auto-rollback', true)
  const hookTimeout = inputs.int('hook-timeout', 300, { min: 1, max: 86400 })
  const commands: ReleaseCommands = {
    preDeploy: parseHostCommand(inputs.str('pre-deploy'), hookTimeout),
    backup: parseHostCommand(inputs.str('backup-command'), hookTimeout),
    release: parseReleaseCommand(
      inputs.str('release-command'),
      inputs.int('release-command-timeout', 900, { min: 1, max: 86400 })
    ),
    postDeploy: parseHostCommand(inputs.str('post-deploy'), hookTimeout)
  }
  if (commands.release && fleet.target === 'swarm')
    throw new UserError(
      "Input 'release-command' is not supported with 'target: swarm' yet: run the migration as a one-off service of its own, or deploy with 'target: compose'."
    )
  if (commands.backup && !commands.release)
    throw new UserError(
      "Input 'backup-command' is set without 'release-command': the backup is taken before the release command runs. Set 'release-command', or run the backup in 'pre-deploy'."
    )
  const probe = readProbeInputs(fleet)
  const canary = readCanaryInputs(fleet)
  const mode = readMaintenanceMode()
  if (mode === 'on' || mode === 'off')
    throw new UserError(
      `Input 'maintenance: ${mode}' switches the page without deploying, which only deploy-ssh does. Here use 'maintenance: release' (the page stays on from the release command until the switch), or a deploy-ssh step of its own.`
    )
  if (mode === 'release' && fleet.target === 'swarm')
    throw new UserError(
      "Input 'maintenance' is not supported with 'target: swarm': the page is an nginx include on a Compose host."
    )
  const maintenance = mode === 'release' ? readMaintenanceConfig() : undefined
  // checked here, before anything connects (the library plans it again with the same rules)
  planEnv({ envFile: envFile === '' ? undefined : envFile, env, envSecrets })
  return {
    envFile,
    env,
    envSecrets,
    fleet,
    images,
    imageRefs,
    registry,
    credentialScope,
    deployment,
    composeFiles,
    services,
    version,
    autoRollback,
    keepReleases,
    commands,
    probe,
    canary,
    maintenance,
    requireAttestation: inputs.bool('require-attestation', false),
    facts
  }
}

export interface DeployStep {
  result: DeployResult
  version: string
  /** the GitHub Deployment (a no-op when no environment is set), still to be finished */
  record?: DeploymentRecord
  /** the registry login on the hosts (ship's put-back uses it again) */
  registryAuth?: RegistryAuth
  /** the fleet options the deploy ran with: the same connections (ship's put-back uses them again) */
  fleet: FleetOptions
  /** with `hold`: the hosts still locked, for ship's smoke test and put-back; release with releaseHeld() */
  held?: HeldDeploy
  keepReleases: number
}

/**
 * Deploys; with `hold` the host locks stay held after the deploy (ship smoke-tests and puts back under
 * the same locks, so no other deploy can slip in between), to be let go with releaseHeld().
 */
export async function deployStep(inp: DeployInputs, opts: { hold?: boolean } = {}): Promise<DeployStep> {
  const { facts, version, keepReleases } = inp
  const scope = inp.credentialScope
  const reg = inp.registry
  const auth = registryAuth(reg, scope)
  const fleet = fleetOptions(inp.fleet, facts)
  const clients = new Map<string, RegistryClient>()
  // credentials only go to the registry they are for; the others are asked anonymously
  const clientFor = (registry: string): { client: RegistryClient; mine: boolean } => {
    const mine = !!reg.password && scope === registry
    let client = clients.get(registry)
    if (!client) {
      client = new RegistryClient({
        registry,
        ...(mine ? { username: reg.username || 'token', password: reg.password } : {})
      })
      clients.set(registry, client)
    }
    return { client, mine }
  }
  /** a 401/403 from a registry that got no credentials: it needs a login of its own */
  const ownLogin = (e: unknown, mine: boolean, input: string, what: string, registry: string): unknown =>
    !mine && e instanceof RegistryError && (e.status === 401 || e.status === 403)
      ? new UserError(
          `Input '${input}': ${what}: ${registry} needs its own login; shipline sends 'registry-password' only to ${scope ?? "the registry named in 'registry'"}. Pin the image by digest (image@sha256:…), or deploy it with its own registry credentials.`,
          e.details
        )
      : e
  const resolveDigest = async (ref: ImageRef): Promise<string> => {
    const { client, mine } = clientFor(ref.registry)
    try {
      return (await client.resolve(ref.repository, ref.tag ?? 'latest')).digest
    } catch (e) {
      throw ownLogin(e, mine, 'images', ref.raw, ref.registry)
    }
  }
  /** `require-attestation`: every pinned image has an attestation referrer in its registry, or the deploy stops here */
  const checkAttested = async (plan: Plan): Promise<void> => {
    if (!inp.requireAttestation) return
    const pinned = Object.entries(plan.images)
    await Promise.all(
      pinned.map(async ([service, pin]) => {
        const ref = parseImageReference(pin)
        const { client, mine } = clientFor(ref.registry)
        const ok = await hasAttestation(client, ref.repository, ref.digest!).catch((e: unknown) => {
          throw ownLogin(e, mine, 'require-attestation', pin, ref.registry)
        })
        if (!ok)
          throw new UserError(
            `Input 'require-attestation': service '${service}' image ${pin} has no attestation (no in-toto or provenance referrer of that digest in ${ref.registry}/${ref.repository}). Build it with 'attest: true' on build-push (promote copies the referrers along), or set 'require-attestation: false'.`
          )
      })
    )
    core.info(
      `require-attestation: ${pinned.length ? pinned.map(([s]) => s).join(', ') : 'no pinned image'}: attested`
    )
  }
  let record: Awaited<ReturnType<typeof startDeployment>> | undefined
  const held = await deployHeld({
    ...fleet,
    log: coreLog,
    registry: auth,
    composeFiles: inp.composeFiles,
    envFile: inp.envFile === '' ? undefined : inp.envFile,
    env: inp.env,
    envSecrets: inp.envSecrets,
    images: inp.images,
    services: inp.services,
    version,
    sha: facts.sha,
    autoRollback: inp.autoRollback,
    keepReleases,
    commands: inp.commands,
    probe: inp.probe,
    canary: inp.canary,
    maintenance: inp.maintenance,
    resolveDigest,
    onPlanned: async (plan: Plan) => {
      // before the GitHub Deployment is recorded and before any host is contacted
      await checkAttested(plan)
      core.info(
        `release ${plan.releaseId} (${plan.version}): ${
          Object.entries(plan.images)
            .map(([s, r]) => `${s}=${r}`)
            .join(', ') || 'no pinned images'
        }`
      )
      record = await startDeployment(inp.deployment, {
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
        ['path', inp.fleet.path],
        ['version', version],
        [
          'images',
          Object.entries(result.images)
            .map(([s, r]) => `${s}=${r}`)
            .join(', ') || '—'
        ]
      ])
    )
    .addRaw(
      result.hosts
        .filter(h => h.canary?.figures.length)
        .map(h => '\n' + gateSummary(h.canary!.figures, `Canary metrics gate: ${h.host}`))
        .join('')
    )
    .write()
  return {
    result,
    version,
    record,
    registryAuth: auth,
    fleet,
    held: opts.hold ? held : undefined,
    keepReleases
  }
}

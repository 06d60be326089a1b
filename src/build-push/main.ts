/**
 * build-push: builds one image and pushes it under its commit tag and the stage tag (src/lib/build), sets
 * the outputs, writes the summary; the post step removes the temporary Docker config. Launched by
 * ./index.ts; importing this module runs nothing.
 */
import * as core from '@actions/core'
import { tmpdir } from 'node:os'
import { maskSecret } from '../action/inputs.js'
import { coreLog } from '../action/log.js'
import { buildPush } from '../lib/build/run.js'
import { failureMarkdown, summaryMarkdown } from '../lib/build/summary.js'
import { registryAccess } from '../lib/build/registry.js'
import { configCredential, createDockerConfig, removeDockerConfig } from '../lib/docker/config.js'
import { getInputs } from './inputs.js'

const STATE_CONFIG = 'docker-config'

export async function run(): Promise<void> {
  /** What a failure summary can say: filled in as the step learns it. */
  const known: { image?: string; tags?: string[] } = {}
  try {
    await buildAndPush(known)
  } catch (e) {
    // the failure itself is what the step reports, even when no summary file can be written
    await core.summary
      .addRaw(failureMarkdown(known.image, known.tags ?? [], (e as Error).message))
      .write()
      .catch(() => undefined)
    throw e
  }
}

async function buildAndPush(known: { image?: string; tags?: string[] }): Promise<void> {
  const inputs = getInputs(known)
  const { push, username, password, sha, image, tags, labels, buildArgs, registry } = inputs
  if (image.lowercasedFrom) {
    core.notice(
      `Image name '${image.lowercasedFrom}' lowercased to '${image.image}': registries accept lowercase repository names only.`
    )
  }
  if (inputs.registryWarning) core.warning(inputs.registryWarning)
  for (const w of inputs.warnings) core.warning(w)
  core.info(
    inputs.pushByDigest
      ? `image ${image.image}, commit ${sha} (from ${inputs.shaFrom}), pushed by digest (no tag)`
      : `image ${image.image}, commit ${sha} (from ${inputs.shaFrom}), tags: ${tags.all.join(', ')}`
  )

  const env = process.env
  // an earlier login to this registry is dropped from the copy only when this step logs in itself
  const config = createDockerConfig(env.RUNNER_TEMP || tmpdir(), {
    registry: password ? registry : undefined
  })
  core.saveState(STATE_CONFIG, config.dir)
  try {
    const login = password ? { registry, username, password } : undefined
    // without a password of its own the step uses an earlier step's login (docker/login-action): the
    // registry client takes it from the same config the docker CLI reads
    const earlier = login ? undefined : configCredential(config.dir, image.registry)
    if (earlier) maskSecret(earlier.password)
    const result = await buildPush(
      {
        context: inputs.context,
        file: inputs.file,
        image,
        tags,
        labels,
        buildArgs,
        platforms: inputs.platforms,
        target: inputs.target,
        push,
        provenance: inputs.provenance,
        cache: inputs.cache,
        cacheFrom: inputs.cacheFrom,
        cacheTo: inputs.cacheTo,
        secrets: inputs.secrets,
        ssh: inputs.ssh,
        buildContexts: inputs.buildContexts,
        pushByDigest: inputs.pushByDigest,
        attest: inputs.attest,
        config,
        login,
        registry: registryAccess(image, login ?? earlier, coreLog)
      },
      coreLog
    )
    core.setOutput('digest', result.digest)
    core.setOutput('image', result.image)
    core.setOutput('ref', result.ref)
    core.setOutput('tags', result.tags.join('\n'))
    core.setOutput('sha-tag', result.shaTag)
    core.setOutput('image-id', result.imageId)
    core.setOutput('pushed', String(result.pushed))
    core.setOutput('metadata', JSON.stringify(result.metadata))
    core.setOutput('attestation-digest', result.attestationDigest)
    const notes: string[] = []
    if (image.lowercasedFrom) notes.push(`Image name \`${image.lowercasedFrom}\` was lowercased.`)
    if (!push)
      notes.push(
        'push: false: the image was built and tagged on the runner only; no registry digest exists, see `image-id`.'
      )
    await core.summary.addRaw(summaryMarkdown(result, notes)).write()
    core.info(push ? `pushed ${result.ref}` : `built ${result.imageId} (not pushed)`)
  } finally {
    // the credential is on disk only while this step needs it; the post step removes it again if main was killed
    removeDockerConfig(config.dir)
  }
}

export async function post(): Promise<void> {
  const dir = core.getState(STATE_CONFIG)
  if (removeDockerConfig(dir)) core.info(`removed the temporary Docker config ${dir}`)
}

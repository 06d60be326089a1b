import * as core from '@actions/core'
import { tmpdir } from 'node:os'
import { runAction } from '../action/run.js'
import { bool, list, maskSecret, secret, str } from '../action/inputs.js'
import { parseKeyValues } from '../lib/parse.js'
import { commitSha, planTags } from '../lib/build/tags.js'
import { defaultImage, loginRegistry, normalizeImage } from '../lib/build/naming.js'
import { ociLabels } from '../lib/build/labels.js'
import { buildPush } from '../lib/build/run.js'
import { failureMarkdown, summaryMarkdown } from '../lib/build/summary.js'
import { registryAccess } from '../lib/build/registry.js'
import { configCredential, createDockerConfig, removeDockerConfig } from '../lib/docker/config.js'

const STATE_CONFIG = 'docker-config'

/** What a failure summary can say: filled in as main learns it. */
const known: { image?: string; tags?: string[] } = {}

async function main(): Promise<void> {
  try {
    await buildAndPush()
  } catch (e) {
    // the failure itself is what the step reports, even when no summary file can be written
    await core.summary
      .addRaw(failureMarkdown(known.image, known.tags ?? [], (e as Error).message))
      .write()
      .catch(() => undefined)
    throw e
  }
}

async function buildAndPush(): Promise<void> {
  const env = process.env
  const push = bool('push', true)
  const username = str('registry-username')
  const password = secret('registry-password')
  if (username && password) maskSecret(`${username}:${password}`)

  const { sha, from } = commitSha({ input: str('sha'), eventName: env.GITHUB_EVENT_NAME, eventPath: env.GITHUB_EVENT_PATH, githubSha: env.GITHUB_SHA })
  const image = normalizeImage(str('image') || defaultImage(env.GITHUB_REPOSITORY, str('service')))
  if (image.lowercasedFrom) {
    core.notice(`Image name '${image.lowercasedFrom}' lowercased to '${image.image}': registries accept lowercase repository names only.`)
  }
  known.image = image.image
  const tags = planTags(sha, str('stage-tag'), list('tags'), image.image)
  known.tags = tags.all
  const labels = ociLabels(
    { serverUrl: env.GITHUB_SERVER_URL, repository: env.GITHUB_REPOSITORY, sha, sourceDateEpoch: env.SOURCE_DATE_EPOCH },
    parseKeyValues('labels', str('labels'))
  )
  const buildArgs = parseKeyValues('build-args', str('build-args'))
  const { registry, warning } = loginRegistry(str('registry'), image)
  if (warning) core.warning(warning)
  core.info(`image ${image.image}, commit ${sha} (from ${from}), tags: ${tags.all.join(', ')}`)

  // an earlier login to this registry is dropped from the copy only when this step logs in itself
  const config = createDockerConfig(env.RUNNER_TEMP || tmpdir(), { registry: password ? registry : undefined })
  core.saveState(STATE_CONFIG, config.dir)
  try {
    const login = password ? { registry, username, password } : undefined
    // without a password of its own the step uses an earlier step's login (docker/login-action): the
    // registry client takes it from the same config the docker CLI reads
    const earlier = login ? undefined : configCredential(config.dir, image.registry)
    if (earlier) maskSecret(earlier.password)
    const result = await buildPush(
      {
        context: str('context', '.'),
        file: str('file'),
        image,
        tags,
        labels,
        buildArgs,
        platforms: list('platforms'),
        target: str('target') || undefined,
        push,
        provenance: str('provenance', 'false'),
        cache: bool('cache', true),
        config,
        login,
        registry: registryAccess(image, login ?? earlier, line => core.debug(line))
      },
      {
        info: m => core.info(m),
        notice: m => core.notice(m),
        warning: m => core.warning(m),
        group: (name, fn) => core.group(name, fn)
      }
    )
    core.setOutput('digest', result.digest)
    core.setOutput('image', result.image)
    core.setOutput('ref', result.ref)
    core.setOutput('tags', result.tags.join('\n'))
    core.setOutput('sha-tag', result.shaTag)
    core.setOutput('image-id', result.imageId)
    core.setOutput('pushed', String(result.pushed))
    const notes: string[] = []
    if (image.lowercasedFrom) notes.push(`Image name \`${image.lowercasedFrom}\` was lowercased.`)
    if (!push) notes.push('push: false: the image was built and tagged on the runner only; no registry digest exists, see `image-id`.')
    await core.summary.addRaw(summaryMarkdown(result, notes)).write()
    core.info(push ? `pushed ${result.ref}` : `built ${result.imageId} (not pushed)`)
  } finally {
    // the credential is on disk only while this step needs it; the post step removes it again if main was killed
    removeDockerConfig(config.dir)
  }
}

async function post(): Promise<void> {
  const dir = core.getState(STATE_CONFIG)
  if (removeDockerConfig(dir)) core.info(`removed the temporary Docker config ${dir}`)
}

await runAction(main, post)

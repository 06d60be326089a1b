/**
 * build-push's inputs, read once and typed: the commit, the image name, the tag plan, labels and build
 * args parsed; the registry login (masked, also as `user:password`).
 */
import { bool, list, maskSecret, secret, str } from '../action/inputs.js'
import { parseKeyValues } from '../lib/parse.js'
import { commitSha, planTags, type TagPlan } from '../lib/build/tags.js'
import { defaultImage, loginRegistry, normalizeImage, type ImageName } from '../lib/build/naming.js'
import { ociLabels } from '../lib/build/labels.js'

export interface BuildPushInputs {
  push: boolean
  username: string
  /** `registry-password` (masked) */
  password: string
  /** the full commit SHA the image is tagged with, and where it came from (`sha`, the PR head, GITHUB_SHA) */
  sha: string
  shaFrom: string
  image: ImageName
  tags: TagPlan
  /** the OCI labels and the `labels` input */
  labels: Map<string, string>
  buildArgs: Map<string, string>
  /** the registry to log in to (from `registry` or the image) */
  registry: string
  /** a line for core.warning when `registry` and the image disagree */
  registryWarning?: string
  context: string
  file: string
  platforms: string[]
  target?: string
  provenance: string
  cache: boolean
}

/** `known` is filled as the image and its tags become known (for the failure summary of a later error). */
export function getInputs(known: { image?: string; tags?: string[] } = {}): BuildPushInputs {
  const env = process.env
  const push = bool('push', true)
  const username = str('registry-username')
  const password = secret('registry-password')
  if (username && password) maskSecret(`${username}:${password}`)

  const { sha, from } = commitSha({
    input: str('sha'),
    eventName: env.GITHUB_EVENT_NAME,
    eventPath: env.GITHUB_EVENT_PATH,
    githubSha: env.GITHUB_SHA
  })
  const image = normalizeImage(str('image') || defaultImage(env.GITHUB_REPOSITORY, str('service')))
  known.image = image.image
  const tags = planTags(sha, str('stage-tag'), list('tags'), image.image)
  known.tags = tags.all
  const labels = ociLabels(
    {
      serverUrl: env.GITHUB_SERVER_URL,
      repository: env.GITHUB_REPOSITORY,
      sha,
      sourceDateEpoch: env.SOURCE_DATE_EPOCH
    },
    parseKeyValues('labels', str('labels'))
  )
  const buildArgs = parseKeyValues('build-args', str('build-args'))
  const { registry, warning } = loginRegistry(str('registry'), image)
  return {
    push,
    username,
    password,
    sha,
    shaFrom: from,
    image,
    tags,
    labels,
    buildArgs,
    registry,
    registryWarning: warning,
    context: str('context', '.'),
    file: str('file'),
    platforms: list('platforms'),
    target: str('target') || undefined,
    provenance: str('provenance', 'false'),
    cache: bool('cache', true)
  }
}

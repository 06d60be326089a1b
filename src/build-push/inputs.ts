/**
 * build-push's inputs, read once and typed: the commit, the image name, the tag plan, labels and build
 * args parsed; the registry login (masked, also as `user:password`); build secrets (every value masked),
 * SSH, extra contexts and caches checked before anything is built.
 */
import { readFileSync, statSync } from 'node:fs'
import { bool, list, maskSecret, secret, str } from '../action/inputs.js'
import { parseKeyValues } from '../lib/parse.js'
import { commitSha, planTags, type TagPlan } from '../lib/build/tags.js'
import { defaultImage, loginRegistry, normalizeImage, type ImageName } from '../lib/build/naming.js'
import { ociLabels } from '../lib/build/labels.js'
import {
  parseBuildContexts,
  parseBuildSecrets,
  parseCacheLines,
  parseSsh,
  secretLikeBuildArgs,
  type BuildSecret
} from '../lib/build/secrets.js'

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
  cacheFrom: string[]
  cacheTo: string[]
  secrets: BuildSecret[]
  ssh: string[]
  buildContexts: Map<string, string>
  pushByDigest: boolean
  /** `attest`: shipline's own provenance statement, pushed as a referrer of the digest */
  attest: boolean
  /** lines for core.warning: skipped empty secrets, build-args that look like secrets */
  warnings: string[]
}

/** A secret file's content is masked too when it is text of a sensible size. */
const MASKABLE_FILE = 64 * 1024

/**
 * `secrets`, `secret-envs`, `secret-files`: every value masked before anything can log it (a file's text
 * too, when small); `build-args` whose names look like secrets get a warning and their values masked.
 */
function buildSecrets(
  env: NodeJS.ProcessEnv,
  buildArgs: Map<string, string>
): { secrets: BuildSecret[]; warnings: string[] } {
  const parsed = parseBuildSecrets(
    { secrets: secret('secrets'), secretEnvs: str('secret-envs'), secretFiles: str('secret-files') },
    env
  )
  for (const s of parsed.secrets) {
    if ('value' in s) maskSecret(s.value)
    else if ('env' in s) maskSecret(env[s.env] ?? '')
    else if (statSync(s.src).size <= MASKABLE_FILE) maskSecret(readFileSync(s.src, 'utf8').trim())
  }
  const warnings = [...parsed.warnings]
  for (const name of secretLikeBuildArgs(buildArgs.keys())) {
    const value = buildArgs.get(name) ?? ''
    if (value.length >= 4) maskSecret(value)
    warnings.push(
      `Input 'build-args': '${name}' looks like a secret, and build arguments stay in the image history and on the builder's command line. Pass it in 'secrets' (${name}=…) and read it with RUN --mount=type=secret,id=${name}.`
    )
  }
  return { secrets: parsed.secrets, warnings }
}

/** `known` is filled as the image and its tags become known (for the failure summary of a later error). */
export function getInputs(known: { image?: string; tags?: string[] } = {}): BuildPushInputs {
  const env = process.env
  const push = bool('push', true)
  const pushByDigest = bool('push-by-digest', false)
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
  known.tags = pushByDigest ? [] : tags.all
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
  const { secrets, warnings } = buildSecrets(env, buildArgs)
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
    cache: bool('cache', true),
    cacheFrom: parseCacheLines('cache-from', str('cache-from')),
    cacheTo: parseCacheLines('cache-to', str('cache-to')),
    secrets,
    ssh: parseSsh(str('ssh'), env),
    buildContexts: parseBuildContexts(str('build-contexts')),
    pushByDigest,
    attest: bool('attest', false),
    warnings
  }
}

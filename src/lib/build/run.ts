/**
 * build-push itself: log in (temporary Docker config), build with buildx when present (it pushes) or with
 * the classic builder (then `docker push` of each tag), and read the digest of every pushed tag back from
 * the registry, so the `digest` output is what the registry serves, whatever the CLI printed.
 */
import { existsSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { UserError } from '../errors.js'
import { lastErrorLine, runDocker, type DockerResult } from '../docker/cli.js'
import { dockerLogin, type DockerConfig } from '../docker/config.js'
import {
  buildxArgs,
  cacheScope,
  canExportCache,
  classicBuildArgs,
  classicBuildKit,
  detectBuildx,
  ghaCacheAvailable,
  pushedDigest,
  readBuildxMetadata,
  needsBuildKit,
  readIidFile,
  secretArgs,
  type BuildSpec,
  type BuildxInfo
} from '../docker/build.js'
import type { ImageName } from './naming.js'
import { classicCacheFrom, type BuildSecret } from './secrets.js'
import type { RegistryAccess } from './registry.js'
import type { TagPlan } from './tags.js'
import { group, notice, type Logger } from '../log.js'
import { IN_TOTO } from '../registry/referrers.js'
import { provenanceStatement } from './provenance.js'

/** build-push logs through the library's one Logger (notice and group fall back when absent) */
export type Log = Logger

export interface BuildPushOptions {
  context: string
  /** Dockerfile ('' = <context>/Dockerfile) */
  file: string
  image: ImageName
  tags: TagPlan
  labels: Map<string, string>
  buildArgs: Map<string, string>
  platforms: string[]
  target?: string
  push: boolean
  provenance?: string
  /** use the GitHub Actions cache when available (default true); explicit cacheFrom/cacheTo replace it */
  cache?: boolean
  /** `cache-from` / `cache-to` entries as docker writes them */
  cacheFrom?: string[]
  cacheTo?: string[]
  /** build secrets: values in memory (to the builder by environment), environment variable names, files */
  secrets?: BuildSecret[]
  /** `--ssh` values (parseSsh) */
  ssh?: string[]
  /** buildx only: named extra contexts */
  buildContexts?: Map<string, string>
  /** buildx only: push the image with no tag; its digest is the result */
  pushByDigest?: boolean
  /** after the push, write shipline's build provenance and push it as a referrer of the digest (provenance.ts) */
  attest?: boolean
  config: DockerConfig
  /** registry login; none when the password is empty */
  login?: { registry: string; username: string; password: string }
  /** the registry of `image`: digests read back after the push, extra tags put registry-side */
  registry: RegistryAccess
  env?: NodeJS.ProcessEnv
  /** the docker binary (tests) */
  bin?: string
  /** force a builder (tests); default: buildx when `docker buildx version` answers */
  builder?: 'buildx' | 'classic'
}

export interface BuildPushResult {
  image: string
  /** registry digest of the SHA tag ('' when nothing was pushed) */
  digest: string
  ref: string
  /** full references, SHA tag first */
  tags: string[]
  shaTag: string
  /** local image id (config digest), when known */
  imageId: string
  pushed: boolean
  builder: string
  /** the digest each tag has in the registry after the push */
  tagDigests: Record<string, string>
  /** what the SHA tag pointed at before this push, when it existed with another digest */
  replacedDigest?: string
  /** pushed by digest, with no tag (tags and shaTag are then empty) */
  byDigest: boolean
  /** `attest: true`: the referrer manifest holding the provenance statement ('' when none was pushed) */
  attestationDigest: string
  /**
   * build-push-action's `metadata`: buildx's metadata file as it wrote it, or (classic builder) the
   * `containerimage.digest` read back, `containerimage.config.digest` (the image id) and `image.name`
   */
  metadata: Record<string, unknown>
  durationMs: number
}

function checkContext(context: string, file: string): { context: string; file: string } {
  const ctx = resolve(context)
  if (!existsSync(ctx) || !statSync(ctx).isDirectory()) {
    throw new UserError(`Build context '${context}' is not a folder. Check out the repository first (actions/checkout) or fix 'context'.`)
  }
  const df = file ? resolve(file) : join(ctx, 'Dockerfile')
  if (!existsSync(df)) {
    throw new UserError(`Dockerfile '${file || join(context, 'Dockerfile')}' not found. Set 'file' to your Dockerfile's path.`)
  }
  return { context: ctx, file: df }
}

function pushFailure(what: string, r: DockerResult, registry: string): UserError {
  const line = lastErrorLine(r)
  let fix = 'See the log group for the full output.'
  if (/denied|forbidden|403|write_package|permission/i.test(line)) {
    fix =
      registry === 'ghcr.io'
        ? "Give the job 'permissions: packages: write', and give this repository Write access in the package's Manage Actions access settings."
        : "The registry user may not push to this repository: check 'registry-username'/'registry-password' and its permissions."
  } else if (/unauthorized|no basic auth|authentication required|401/i.test(line)) {
    fix = "The registry wants a login: set 'registry-password' (and 'registry-username')."
  } else if (/connection refused|no such host|timeout|i\/o timeout|server gave HTTP response to HTTPS/i.test(line)) {
    fix = `Check that ${registry} is reachable from the runner (and serves HTTPS).`
  }
  return new UserError(`${what} failed: ${line}. ${fix}`, `${r.stderr}\n${r.stdout}`.trim())
}

function buildFailure(what: string, r: DockerResult, loginFailure: string | undefined): UserError {
  const line = lastErrorLine(r)
  const fix =
    loginFailure && /pull access denied|unauthorized|denied|authentication required|not found/i.test(line)
      ? `A base image may need the registry login, which failed: ${loginFailure}`
      : 'Fix the Dockerfile or the build inputs (the full output is in the log group above).'
  // the whole output was streamed into a log group already
  return new UserError(`${what} failed: ${line}. ${fix}`)
}

type Run = (args: string[], extraEnv?: Record<string, string>) => Promise<DockerResult>

interface Built {
  builder: string
  imageId: string
  /** the digest the CLI reported for the SHA tag (or the by-digest push), when it pushed */
  cliDigest?: string
  /** buildx's metadata file ({} for the classic builder) */
  metadata: Record<string, unknown>
}

const BUILDX_FIX = 'Add docker/setup-buildx-action before this step'

/** What buildPush refuses whatever the builder, before anything runs. */
function checkOptions(o: BuildPushOptions): void {
  if (!o.pushByDigest) return
  if (!o.push) {
    throw new UserError(
      "Input 'push-by-digest' needs 'push: true': an image pushed by digest only exists in the registry. Set 'push: true' or drop 'push-by-digest'."
    )
  }
  const extra = o.tags.all.filter(t => t !== o.tags.shaTag && t !== o.tags.stageTag)
  if (extra.length) {
    throw new UserError(
      `Input 'tags' (${extra.join(', ')}) cannot go with 'push-by-digest: true', which pushes no tag. Drop 'tags' here and give them to the promote job that merges the digests ('to-tags').`
    )
  }
}

/** The input a build secret came from, for the messages. */
const secretInput = (s: BuildSecret): string => ('value' in s ? 'secrets' : 'env' in s ? 'secret-envs' : 'secret-files')

/** What the classic `docker build` cannot do, refused before the build with the input and the fix. */
async function checkClassic(o: BuildPushOptions): Promise<void> {
  if (o.buildContexts?.size) {
    throw new UserError(
      `Input 'build-contexts' needs buildx, which this runner lacks: the classic docker build has no named contexts. ${BUILDX_FIX}.`
    )
  }
  if (o.pushByDigest) {
    throw new UserError(
      `Input 'push-by-digest' needs buildx, which this runner lacks: the classic docker build pushes tags only. ${BUILDX_FIX}, or drop 'push-by-digest'.`
    )
  }
  if (o.cacheTo?.length) {
    throw new UserError(
      `Input 'cache-to' needs buildx, which this runner lacks: the classic docker build cannot export a cache. ${BUILDX_FIX}, or drop 'cache-to'.`
    )
  }
  classicCacheFrom(o.cacheFrom ?? [])
  const input = o.secrets?.length ? secretInput(o.secrets[0]) : o.ssh?.length ? 'ssh' : undefined
  if (!input) return
  const bk = await classicBuildKit({ env: o.config.env, bin: o.bin })
  if (!bk.ok) {
    throw new UserError(
      `Input '${input}' needs BuildKit, which docker CLI ${bk.client} runs only through buildx, and this runner lacks buildx. ${BUILDX_FIX} (a docker CLI before 23.0, e.g. Debian's docker.io 20.10, has BuildKit built in).`
    )
  }
}

/** buildx when present (or required), the classic builder otherwise; refuses what the builder cannot do. */
async function chooseBuilder(o: BuildPushOptions): Promise<BuildxInfo | undefined> {
  const buildx = o.builder === 'classic' ? undefined : await detectBuildx({ env: o.config.env, bin: o.bin })
  if (o.builder === 'buildx' && !buildx) {
    throw new UserError('buildx was required but `docker buildx version` fails. Add docker/setup-buildx-action before this step.')
  }
  if (o.platforms.length > 1 && !buildx) {
    throw new UserError(
      `'platforms' lists ${o.platforms.length} platforms (${o.platforms.join(', ')}): a multi-platform build needs buildx, which this runner lacks. Add docker/setup-buildx-action (and docker/setup-qemu-action) before this step, or build one platform.`
    )
  }
  if (o.platforms.length > 1 && buildx?.driver === 'docker') {
    throw new UserError(
      `'platforms' lists ${o.platforms.length} platforms but the current buildx builder uses the docker driver, which builds one platform. Add docker/setup-buildx-action before this step.`
    )
  }
  if (!buildx) await checkClassic(o)
  return buildx
}

/** Logs in; returns the failure message when a login failed that push: false can do without. */
async function login(o: BuildPushOptions, log: Log): Promise<string | undefined> {
  const login = o.login
  if (!login) return undefined
  try {
    await group(log, `docker login ${login.registry}`, async () => {
      await dockerLogin({ config: o.config, bin: o.bin, ...login })
      log.info(`logged in to ${login.registry} as ${login.username} (credential kept in ${o.config.dir} for this step only)`)
    })
    return undefined
  } catch (e) {
    if (o.push) throw e
    // push: false (pull requests, often with a read-only token): only private base images need the login
    log.info(`${(e as Error).message} Building without a login (push: false).`)
    return (e as Error).message
  }
}

/** `docker buildx build`: it pushes every tag itself and writes the digest to the metadata file. */
async function buildWithBuildx(
  o: BuildPushOptions,
  spec: BuildSpec,
  secretEnv: Record<string, string>,
  buildx: BuildxInfo,
  run: Run,
  log: Log,
  loginFailure?: string
): Promise<Built> {
  const env = o.env ?? process.env
  // explicit cache-from / cache-to replace the `cache` shortcut
  const explicitCache = Boolean(o.cacheFrom?.length || o.cacheTo?.length)
  spec.cacheFrom = o.cacheFrom
  spec.cacheTo = o.cacheTo
  if (!explicitCache && o.cache !== false && ghaCacheAvailable(env)) {
    spec.ghaCacheScope = cacheScope(o.image.image)
    spec.ghaCacheExport = canExportCache(buildx)
    if (!spec.ghaCacheExport) {
      notice(
        log,
        `The buildx builder's driver (${buildx.driver ?? 'unknown'}) cannot write the GitHub Actions cache, so it is only read: add docker/setup-buildx-action to cache layers between runs.`
      )
    }
  }
  const args = buildxArgs(spec)
  const r = await group(log, `docker buildx build (${o.push ? 'push' : 'no push'})`, async () => {
    log.info(`docker ${args.join(' ')}`)
    return run(args, secretEnv)
  })
  if (r.code !== 0) {
    if (o.push && /push|denied|unauthorized|forbidden|401|403/i.test(lastErrorLine(r))) throw pushFailure('docker buildx build --push', r, o.image.registry)
    throw buildFailure('docker buildx build', r, loginFailure)
  }
  const meta = readBuildxMetadata(spec.metadataFile!)
  return {
    builder: `buildx (${buildx.version.split('\n')[0]}${buildx.driver ? `, ${buildx.driver} driver` : ''})`,
    imageId: readIidFile(spec.iidFile!) ?? meta.configDigest ?? '',
    cliDigest: o.push ? meta.digest : undefined,
    metadata: meta.raw
  }
}

/**
 * `docker build` with the classic builder, then one `docker push` (the SHA tag); the other tags are put
 * registry-side, as manifest PUTs of the very bytes that push stored.
 */
async function buildClassic(
  o: BuildPushOptions,
  spec: BuildSpec,
  secretEnv: Record<string, string>,
  run: Run,
  log: Log,
  loginFailure?: string
): Promise<Built> {
  spec.cacheFrom = classicCacheFrom(o.cacheFrom ?? [])
  // BuildKit only where the build needs it (secrets, SSH): the classic builder's image ids stay as they were
  const buildKit = needsBuildKit(spec)
  const args = classicBuildArgs(spec)
  const r = await group(log, buildKit ? 'docker build (BuildKit)' : 'docker build', async () => {
    log.info(`docker ${args.join(' ')}`)
    return run(args, { DOCKER_BUILDKIT: buildKit ? '1' : '0', ...secretEnv })
  })
  if (r.code !== 0) throw buildFailure('docker build', r, loginFailure)
  const built: Built = {
    builder: `docker build (classic builder${buildKit ? ' with BuildKit' : ''}; no buildx)`,
    imageId: readIidFile(spec.iidFile!) ?? '',
    metadata: {}
  }
  if (!o.push) return built
  const shaRef = `${o.image.image}:${o.tags.shaTag}`
  const p = await group(log, `docker push ${shaRef}`, () => run(['push', shaRef]))
  if (p.code !== 0) throw pushFailure(`docker push ${shaRef}`, p, o.image.registry)
  built.cliDigest = pushedDigest(p.stdout)
  const others = o.tags.all.filter(t => t !== o.tags.shaTag)
  if (others.length) {
    await o.registry.retag(built.cliDigest ?? o.tags.shaTag, others)
    log.info(`tagged ${others.join(', ')} registry-side (manifest PUT of the pushed manifest's exact bytes)`)
  }
  return built
}

/** The digest of every tag as the registry answers now; the SHA tag's is the result. */
async function readBack(o: BuildPushOptions, cliDigest: string | undefined, log: Log): Promise<{ digest: string; tagDigests: Record<string, string> }> {
  const tagDigests: Record<string, string> = {}
  for (const tag of o.tags.all) {
    const d = await o.registry.digest(tag)
    if (!d) {
      throw new UserError(
        `The registry does not answer ${o.image.image}:${tag} after the push. Check that nothing deletes tags of ${o.image.image} while this step runs, then re-run.`
      )
    }
    tagDigests[tag] = d
  }
  const digest = tagDigests[o.tags.shaTag]
  if (cliDigest && cliDigest !== digest) {
    log.warning(
      `${o.image.image}:${o.tags.shaTag} is ${digest} in the registry but the push reported ${cliDigest}: another job pushed the same tag meanwhile. The outputs give the registry's digest.`
    )
  }
  for (const [tag, d] of Object.entries(tagDigests)) {
    if (d !== digest) log.warning(`${o.image.image}:${tag} points at ${d}, not at ${digest}: another job moved it after this push.`)
  }
  return { digest, tagDigests }
}

/** The digest of an image pushed by digest, as the registry answers for it. */
async function readBackByDigest(o: BuildPushOptions, cliDigest: string | undefined): Promise<string> {
  if (!cliDigest) {
    throw new UserError(
      'buildx pushed by digest but its metadata file names no containerimage.digest. Update buildx (docker/setup-buildx-action) and re-run.'
    )
  }
  const d = await o.registry.digest(cliDigest)
  if (d !== cliDigest) {
    throw new UserError(`The registry does not answer ${o.image.image}@${cliDigest} after the push by digest. Re-run; if it persists, check the registry.`)
  }
  return d
}

/** build-push-action's `metadata` output for builders that write no metadata file. */
function metadataOf(built: Built, digest: string, names: string[]): Record<string, unknown> {
  if (Object.keys(built.metadata).length) return built.metadata
  return {
    ...(digest ? { 'containerimage.digest': digest } : {}),
    ...(built.imageId ? { 'containerimage.config.digest': built.imageId } : {}),
    'image.name': names.join(',')
  }
}

/**
 * `attest: true`: the provenance statement of the pushed digest, pushed as its referrer (artifactType
 * in-toto); returns the referrer manifest's digest. Nothing pushed (push: false): nothing to attest.
 */
async function attest(
  o: BuildPushOptions,
  digest: string,
  builder: string,
  startedOn: Date,
  log: Log
): Promise<string> {
  if (!o.attest) return ''
  if (!digest) {
    notice(log, "attest: nothing was pushed (push: false), so there is no registry digest to attest; 'attestation-digest' is empty.")
    return ''
  }
  const statement = provenanceStatement({
    image: o.image.image,
    digest,
    // the SHA tag is the full commit SHA itself
    sha: o.tags.shaTag,
    context: o.context,
    file: o.file,
    target: o.target,
    platforms: o.platforms,
    buildArgNames: [...o.buildArgs.keys()],
    builder,
    pushByDigest: o.pushByDigest === true,
    startedOn,
    finishedOn: new Date(),
    env: o.env ?? process.env
  })
  const pushed = await group(log, `attest: provenance of ${o.image.image}@${digest}`, async () => {
    const r = await o.registry.attach(digest, IN_TOTO, Buffer.from(JSON.stringify(statement)))
    log.info(`provenance ${r.digest} is a referrer of ${digest} (${r.api ? 'Referrers API' : `tag schema: ${o.image.image}:${r.tag}`})`)
    return r
  })
  return pushed.digest
}

/** Builds, pushes and reads back. Throws UserError for everything a user can fix. */
export async function buildPush(o: BuildPushOptions, log: Log): Promise<BuildPushResult> {
  const startedOn = new Date()
  const started = startedOn.getTime()
  checkOptions(o)
  const { context, file } = checkContext(o.context, o.file)
  const run: Run = (args, extraEnv = {}) => runDocker(args, { env: { ...o.config.env, ...extraEnv }, bin: o.bin, onLine: l => log.info(l) })
  const buildx = await chooseBuilder(o)
  const loginFailure = await login(o, log)
  const byDigest = o.pushByDigest === true
  const before = o.push && !byDigest ? await o.registry.digest(o.tags.shaTag).catch(() => undefined) : undefined

  const refs = byDigest ? [] : o.tags.all.map(t => `${o.image.image}:${t}`)
  const secrets = secretArgs(o.secrets ?? [])
  const spec: BuildSpec = {
    context,
    file,
    tags: refs,
    labels: o.labels,
    buildArgs: o.buildArgs,
    platforms: o.platforms,
    target: o.target,
    push: o.push,
    provenance: o.provenance,
    metadataFile: join(o.config.dir, 'metadata.json'),
    iidFile: join(o.config.dir, 'iid'),
    secrets: secrets.flags,
    ssh: o.ssh,
    buildContexts: o.buildContexts,
    pushByDigest: byDigest ? o.image.image : undefined
  }
  const built = buildx
    ? await buildWithBuildx(o, spec, secrets.env, buildx, run, log, loginFailure)
    : await buildClassic(o, spec, secrets.env, run, log, loginFailure)
  const { digest, tagDigests } = byDigest
    ? { digest: await readBackByDigest(o, built.cliDigest), tagDigests: {} }
    : o.push
      ? await readBack(o, built.cliDigest, log)
      : { digest: '', tagDigests: {} }
  const attestationDigest = await attest(o, digest, built.builder, startedOn, log)

  const shaRef = byDigest ? '' : `${o.image.image}:${o.tags.shaTag}`
  const replacedDigest = before && digest && before !== digest ? before : undefined
  if (replacedDigest) {
    log.warning(
      `${shaRef} pointed at ${replacedDigest} before this push and now at ${digest}: the commit was built again (a re-run). Set SOURCE_DATE_EPOCH for reproducible builds.`
    )
  }
  return {
    image: o.image.image,
    digest,
    ref: digest ? `${o.image.image}@${digest}` : '',
    tags: refs,
    shaTag: shaRef,
    imageId: built.imageId,
    pushed: o.push,
    builder: built.builder,
    tagDigests,
    replacedDigest,
    byDigest,
    attestationDigest,
    metadata: metadataOf(built, digest, byDigest ? [o.image.image] : refs),
    durationMs: Date.now() - started
  }
}

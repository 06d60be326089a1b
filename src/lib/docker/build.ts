/**
 * The argv of an image build, for buildx (`docker buildx build`) and for the classic builder
 * (`docker build`), as pure functions of one BuildSpec; plus the few facts read back from a build
 * (buildx metadata file, iidfile, `docker push` digest lines).
 */
import { readFileSync } from 'node:fs'
import { runDocker, type DockerRunOptions } from './cli.js'

export interface BuildSpec {
  context: string
  file: string
  /** full references: `image:tag` */
  tags: string[]
  labels: Map<string, string>
  buildArgs: Map<string, string>
  platforms: string[]
  target?: string
  push: boolean
  /** `--provenance` value: 'false' (default), 'true', 'mode=max', … */
  provenance?: string
  /** GitHub Actions cache scope, when the gha cache is available */
  ghaCacheScope?: string
  /** also write the gha cache (needs a builder that can export a cache, not the docker driver) */
  ghaCacheExport?: boolean
  metadataFile?: string
  iidFile?: string
  /** `--secret` values: `id=<id>,env=<VAR>` or `id=<id>,src=<file>`, never a secret value */
  secrets?: string[]
  /** `--ssh` values: `default`, `<id>`, `<id>=<socket or key files>` */
  ssh?: string[]
  /** buildx only: `--build-context name=value` */
  buildContexts?: Map<string, string>
  /** explicit `--cache-from` / `--cache-to` entries (they replace the gha shortcut) */
  cacheFrom?: string[]
  cacheTo?: string[]
  /** buildx only: push this repository by digest, with no tag (`--output type=image,push-by-digest=true,…`) */
  pushByDigest?: string
}

/** The environment variable a `secrets` value reaches the builder through (its index in the list). */
export const secretEnvName = (i: number): string => `SHIPLINE_BUILD_SECRET_${i}`

/**
 * The `--secret` values of a build and the environment they need: a value of `secrets` travels in an
 * environment variable of the builder process only (`id=x,env=SHIPLINE_BUILD_SECRET_n`), never in argv.
 */
export function secretArgs(
  secrets: ({ id: string; value: string } | { id: string; env: string } | { id: string; src: string })[]
): { flags: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {}
  const flags = secrets.map((s, i) => {
    if ('value' in s) {
      env[secretEnvName(i)] = s.value
      return `id=${s.id},env=${secretEnvName(i)}`
    }
    return 'env' in s ? `id=${s.id},env=${s.env}` : `id=${s.id},src=${s.src}`
  })
  return { flags, env }
}

/** Whether a classic `docker build` of this spec needs BuildKit (DOCKER_BUILDKIT=1): secrets or SSH. */
export function needsBuildKit(spec: BuildSpec): boolean {
  return Boolean(spec.secrets?.length || spec.ssh?.length)
}

function common(spec: BuildSpec): string[] {
  const args = ['--file', spec.file]
  for (const t of spec.tags) args.push('--tag', t)
  for (const [k, v] of spec.labels) args.push('--label', `${k}=${v}`)
  for (const [k, v] of spec.buildArgs) args.push('--build-arg', `${k}=${v}`)
  if (spec.target) args.push('--target', spec.target)
  for (const s of spec.secrets ?? []) args.push('--secret', s)
  for (const s of spec.ssh ?? []) args.push('--ssh', s)
  return args
}

/** `docker buildx build …`: pushes by itself (`--push`), or loads a single-platform image (`--load`). */
export function buildxArgs(spec: BuildSpec): string[] {
  const args = ['buildx', 'build', ...common(spec)]
  if (spec.platforms.length) args.push('--platform', spec.platforms.join(','))
  args.push(`--provenance=${spec.provenance ?? 'false'}`)
  for (const [name, value] of spec.buildContexts ?? []) args.push('--build-context', `${name}=${value}`)
  for (const c of spec.cacheFrom ?? []) args.push('--cache-from', c)
  for (const c of spec.cacheTo ?? []) args.push('--cache-to', c)
  if (spec.ghaCacheScope) {
    args.push('--cache-from', `type=gha,scope=${spec.ghaCacheScope}`)
    if (spec.ghaCacheExport !== false)
      args.push('--cache-to', `type=gha,mode=max,scope=${spec.ghaCacheScope}`)
  }
  if (spec.metadataFile) args.push('--metadata-file', spec.metadataFile)
  if (spec.iidFile) args.push('--iidfile', spec.iidFile)
  if (spec.pushByDigest) {
    args.push(
      '--output',
      `type=image,name=${spec.pushByDigest},push-by-digest=true,name-canonical=true,push=true`
    )
  } else if (spec.push) args.push('--push')
  else if (spec.platforms.length <= 1) args.push('--load')
  args.push(spec.context)
  return args
}

/**
 * `docker build …` with the classic builder (run with DOCKER_BUILDKIT=0, or 1 when needsBuildKit());
 * pushing is separate. `cacheFrom` holds image references only here (classicCacheFrom).
 */
export function classicBuildArgs(spec: BuildSpec): string[] {
  const args = ['build', ...common(spec)]
  if (spec.platforms.length === 1) args.push('--platform', spec.platforms[0])
  for (const c of spec.cacheFrom ?? []) args.push('--cache-from', c)
  if (spec.iidFile) args.push('--iidfile', spec.iidFile)
  args.push(spec.context)
  return args
}

/**
 * The gha cache is usable when the runner gave this action its cache service (JavaScript actions get
 * ACTIONS_RUNTIME_TOKEN and ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL; `run:` steps do not).
 */
export function ghaCacheAvailable(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.ACTIONS_RUNTIME_TOKEN && (env.ACTIONS_CACHE_URL || env.ACTIONS_RESULTS_URL))
}

/** A cache scope per image, so two services of one repository do not overwrite each other's cache. */
export function cacheScope(image: string): string {
  return image.replace(/[^a-zA-Z0-9._-]+/g, '-')
}

export interface BuildxInfo {
  /** `docker buildx version` */
  version: string
  /** the current builder's driver: `docker`, `docker-container`, `kubernetes`, `remote` (undefined if unknown) */
  driver?: string
}

/** Parses `docker buildx inspect`: the first `Driver:` line is the current builder's. */
export function parseBuildxDriver(inspect: string): string | undefined {
  return /^Driver:\s*(\S+)/m.exec(inspect)?.[1]
}

/** buildx and its current builder, or undefined when buildx is not installed (or broken). */
export async function detectBuildx(
  opts: Pick<DockerRunOptions, 'env' | 'bin'> = {}
): Promise<BuildxInfo | undefined> {
  try {
    const r = await runDocker(['buildx', 'version'], opts)
    if (r.code !== 0) return undefined
    const inspect = await runDocker(['buildx', 'inspect'], opts)
    return {
      version: r.stdout.trim() || 'buildx',
      driver: inspect.code === 0 ? parseBuildxDriver(inspect.stdout) : undefined
    }
  } catch {
    return undefined
  }
}

/** The docker driver (the default builder without docker/setup-buildx-action) cannot export a cache. */
export function canExportCache(info: BuildxInfo): boolean {
  return info.driver !== undefined && info.driver !== 'docker'
}

export interface BuildxMetadata {
  /** the whole file, as buildx wrote it */
  raw: Record<string, unknown>
  /** the pushed manifest (or index) digest */
  digest?: string
  /** the image config digest (the image id of a single-platform image) */
  configDigest?: string
}

/** Reads buildx's `--metadata-file`. */
export function readBuildxMetadata(file: string): BuildxMetadata {
  try {
    const m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
    const s = (k: string): string | undefined => (typeof m[k] === 'string' ? (m[k] as string) : undefined)
    return { raw: m, digest: s('containerimage.digest'), configDigest: s('containerimage.config.digest') }
  } catch {
    return { raw: {} }
  }
}

/** Reads an `--iidfile` (`sha256:…`), or undefined. */
export function readIidFile(file: string): string | undefined {
  try {
    const id = readFileSync(file, 'utf8').trim()
    return /^sha256:[0-9a-f]{64}$/.test(id) ? id : undefined
  } catch {
    return undefined
  }
}

/** The digest `docker push` reports (`<tag>: digest: sha256:… size: N`). */
export function pushedDigest(output: string): string | undefined {
  const m = /digest: (sha256:[0-9a-f]{64})/.exec(output)
  return m?.[1]
}

/**
 * Whether this docker CLI runs a BuildKit build (`DOCKER_BUILDKIT=1 docker build`) without buildx: clients
 * before 23.0 carry BuildKit's client in themselves (Debian's docker.io 20.10 does); from 23.0 on it needs
 * the buildx plugin ("BuildKit is enabled but the buildx component is missing or broken").
 */
export async function classicBuildKit(
  opts: Pick<DockerRunOptions, 'env' | 'bin'> = {}
): Promise<{ ok: boolean; client: string }> {
  const r = await runDocker(['version', '--format', '{{.Client.Version}}'], opts).catch(() => undefined)
  const client = r?.stdout.trim().split('\n')[0] || 'unknown'
  const major = Number(/^(\d+)\./.exec(client)?.[1])
  return { ok: Number.isFinite(major) && major < 23, client }
}

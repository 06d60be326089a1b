/**
 * A temporary Docker config folder for one step: `docker login` writes the registry credential there
 * (the password goes over stdin), every docker call of the step uses it through DOCKER_CONFIG, and it is
 * removed afterwards, so nothing stays in ~/.docker/config.json on self-hosted runners.
 *
 * The folder starts from the user's own config (logins made earlier, e.g. by docker/login-action, still
 * work for pulling base images) minus any credential store, so our login cannot land outside the folder.
 * Builders created by docker/setup-buildx-action live in the user's config folder: BUILDX_CONFIG points
 * there, and the user's cli-plugins folder is linked in so a buildx installed there is found.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, join } from 'node:path'
import { UserError } from '../errors.js'
import { lastErrorLine, runDocker, type DockerRunOptions } from './cli.js'

const CONFIG_PREFIX = 'shipline-docker-'

export interface DockerConfig {
  /** the temporary folder (DOCKER_CONFIG) */
  dir: string
  /** environment every docker call of the step gets (DOCKER_CONFIG, BUILDX_CONFIG when found) */
  env: Record<string, string>
}

interface ConfigJson {
  auths?: Record<string, unknown>
  credsStore?: string
  credHelpers?: Record<string, string>
  [k: string]: unknown
}

/** The user's Docker config folder: DOCKER_CONFIG when set, else ~/.docker. */
export function userConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker')
}

/** Registry keys as Docker writes them in `auths` (Docker Hub has its historical URL). */
function authKeys(registry: string): string[] {
  return registry === 'docker.io'
    ? ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io', 'registry-1.docker.io']
    : [registry, `https://${registry}`, `http://${registry}`]
}

/**
 * Creates `<parent>/shipline-docker-XXXXXX` (mode 0700) seeded from the user's config without credential
 * stores. `registry` (when given) also loses any credential helper and earlier login, so `docker login`
 * writes to this folder only.
 */
export function createDockerConfig(
  parent: string,
  opts: { registry?: string; env?: NodeJS.ProcessEnv } = {}
): DockerConfig {
  const env = opts.env ?? process.env
  mkdirSync(parent, { recursive: true })
  const dir = mkdtempSync(join(parent, CONFIG_PREFIX))
  const source = userConfigDir(env)
  let config: ConfigJson = {}
  try {
    config = JSON.parse(readFileSync(join(source, 'config.json'), 'utf8')) as ConfigJson
  } catch {
    /* no config of the user's, or unreadable: start empty */
  }
  delete config.credsStore
  if (opts.registry) {
    for (const k of authKeys(opts.registry)) {
      if (config.credHelpers) delete config.credHelpers[k]
      if (config.auths) delete config.auths[k]
    }
  }
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n', { mode: 0o600 })
  const plugins = join(source, 'cli-plugins')
  if (existsSync(plugins)) symlinkSync(plugins, join(dir, 'cli-plugins'))
  const out: Record<string, string> = { DOCKER_CONFIG: dir }
  const buildx = env.BUILDX_CONFIG || join(source, 'buildx')
  if (existsSync(buildx)) out.BUILDX_CONFIG = buildx
  return { dir, env: out }
}

/**
 * Removes a folder made by createDockerConfig. Refuses anything not named shipline-docker-* so a bad
 * state value cannot remove something else; a symlinked cli-plugins folder is unlinked, not followed.
 */
export function removeDockerConfig(dir: string): boolean {
  if (!dir || !basename(dir).startsWith(CONFIG_PREFIX)) return false
  if (!existsSync(dir)) return false
  rmSync(dir, { recursive: true, force: true })
  return true
}

export interface LoginOptions extends Pick<DockerRunOptions, 'bin'> {
  config: DockerConfig
  registry: string
  username: string
  password: string
}

/** `docker login --password-stdin`: the password only ever goes over stdin. */
export async function dockerLogin(o: LoginOptions): Promise<void> {
  if (!o.username) {
    throw new UserError(
      `Cannot log in to ${o.registry}: 'registry-username' is empty. Set it (default: \${{ github.actor }}).`
    )
  }
  const server = o.registry === 'docker.io' ? 'https://index.docker.io/v1/' : o.registry
  const r = await runDocker(['login', '--username', o.username, '--password-stdin', server], {
    env: o.config.env,
    stdin: o.password,
    bin: o.bin
  })
  if (r.code === 0) return
  const line = lastErrorLine(r)
  const denied =
    /unauthorized|401|403|denied|incorrect|invalid (username|password)|authentication required/i.test(line)
  const fix = denied
    ? o.registry === 'ghcr.io'
      ? "Check 'registry-username'/'registry-password'; with the workflow token give the job 'permissions: packages: write'."
      : "Check 'registry-username' and 'registry-password'."
    : `Check that ${o.registry} is reachable from the runner and 'registry' names it.`
  throw new UserError(
    `Login to ${o.registry} as ${o.username} failed: ${line}. ${fix}`,
    `${r.stderr}\n${r.stdout}`.trim()
  )
}

/**
 * The credential an earlier `docker login` left for `registry` in a config folder (an inline `auth`
 * entry), so shipline's registry client can use the same login as the docker CLI. Undefined when none.
 */
export function configCredential(
  dir: string,
  registry: string
): { username: string; password: string } | undefined {
  let config: ConfigJson
  try {
    config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as ConfigJson
  } catch {
    return undefined
  }
  for (const key of authKeys(registry)) {
    const entry = config.auths?.[key] as { auth?: unknown } | undefined
    if (typeof entry?.auth !== 'string') continue
    const raw = Buffer.from(entry.auth, 'base64').toString('utf8')
    const i = raw.indexOf(':')
    if (i > 0) return { username: raw.slice(0, i), password: raw.slice(i + 1) }
  }
  return undefined
}

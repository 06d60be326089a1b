/** Helpers for the build-push tests: an independent digest check (skopeo), build contexts, cleanup. */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TestRegistry } from '../../src/testkit/registry.js'
import { removeRepository, writeAppContext } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import type { BuildPushOptions } from '../../src/lib/build/run.js'
import { normalizeImage } from '../../src/lib/build/naming.js'
import { planTags } from '../../src/lib/build/tags.js'
import { registryAccess } from '../../src/lib/build/registry.js'
import { createDockerConfig } from '../../src/lib/docker/config.js'

const run = promisify(execFile)

/**
 * What the registry answers for `ref`, asked by skopeo (not our client) with an auth file: the password
 * never goes on skopeo's command line. Undefined when the tag does not exist.
 */
export async function skopeoDigest(reg: TestRegistry, ref: string): Promise<string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-bp-skopeo-'))
  try {
    const authfile = join(dir, 'auth.json')
    const auths = reg.username
      ? { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } }
      : {}
    writeFileSync(authfile, JSON.stringify({ auths }), { mode: 0o600 })
    const { stdout } = await run(
      'skopeo',
      ['inspect', '--tls-verify=false', '--authfile', authfile, '--raw', `docker://${ref}`],
      {
        encoding: 'buffer',
        maxBuffer: 16 << 20
      }
    )
    const { createHash } = await import('node:crypto')
    return `sha256:${createHash('sha256').update(stdout).digest('hex')}`
  } catch (e) {
    if (/manifest unknown|not found|404/i.test(String((e as { stderr?: Buffer }).stderr ?? e)))
      return undefined
    throw e
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A build context of the sample app (busybox, FROM scratch) whose version makes its digest unique. */
export function appContext(version: string): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-bp-ctx-'))
  writeAppContext(dir, { tag: 'unused', version })
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/**
 * Removes every local image of these repositories (the tests name them uniquely), by tag and by digest
 * reference (src/testkit/images.ts removeRepository), never by id: identical builds of other suites share ids.
 */
export async function removeRepositories(...repos: string[]): Promise<void> {
  for (const repo of repos) removeRepository(repo)
}

/**
 * Every command line of every process, read from /proc until stop(), and the environment of every docker
 * process (the action's own node process holds its inputs in its environment, as the runner gives them;
 * its children must not, except where a build secret is handed over by name): returns what contained
 * `needle`, for an environment with the names of the variables that held it.
 */
export function watchArgv(needle: string): { stop(): string[] } {
  const seen = new Set<string>()
  const scan = (): void => {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      try {
        const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        if (args.includes(needle)) seen.add(args.replace(/\0/g, ' '))
        if (/^(\S*\/)?docker(-\S+)?\0/.test(args)) {
          const vars = readFileSync(`/proc/${pid}/environ`, 'utf8')
            .split('\0')
            .filter(v => v.includes(needle))
            .map(v => v.slice(0, v.indexOf('=')))
          if (vars.length) seen.add(`environment (${vars.join(', ')}) of ${args.replace(/\0/g, ' ')}`)
        }
      } catch {
        /* gone */
      }
    }
  }
  const timer = setInterval(scan, 10)
  return {
    stop: () => {
      clearInterval(timer)
      scan()
      return [...seen]
    }
  }
}

/**
 * Options for one push of the app in `context` to `reg` under a fresh repository `<prefix>-<unique>` (added
 * to `repos` for cleanup), logged in, with the Docker config folder of `user` (where a stand-in buildx lives).
 */
export function pushOptions(
  p: {
    reg: TestRegistry
    prefix: string
    sha: string
    context: string
    temp: string
    user: string
    repos: string[]
  },
  over: Partial<BuildPushOptions> = {}
): BuildPushOptions {
  const { reg, sha } = p
  const image = normalizeImage(`${reg.host}/${uniqueName(p.prefix)}`)
  p.repos.push(image.image)
  return {
    context: p.context,
    file: '',
    image,
    tags: planTags(sha, 'stage', []),
    labels: new Map([['org.opencontainers.image.revision', sha]]),
    buildArgs: new Map(),
    platforms: [],
    push: true,
    config: createDockerConfig(p.temp, { registry: reg.host, env: { DOCKER_CONFIG: p.user } }),
    login: { registry: reg.host, username: reg.username, password: reg.password },
    registry: registryAccess(image, { username: reg.username, password: reg.password }),
    env: {},
    ...over
  }
}

/** The argv of every call of the stand-in buildx (fake-buildx.ts), from its log. */
export function buildxArgv(log: string): string[][] {
  return existsSync(log)
    ? readFileSync(log, 'utf8')
        .trim()
        .split('\n')
        .map(l => JSON.parse(l) as string[])
    : []
}

/**
 * A local sandbox of everything shipline talks to in production, made of real parts on this machine:
 * a registry with token auth (the ghcr.io flow), an sshd acting as the Compose host (this machine's Docker
 * engine and docker-compose behind it), a local stand-in of GitHub's REST API, and a workspace holding the
 * sample app's source (busybox, /health /readyz /metrics, a HEALTHCHECK) and its docker-compose.yml.
 * The demo (src/testkit/demo.ts) and the end-to-end tests use it.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { start as startGitHubApi, type GitHubApi } from './github-api.js'
import { removeRepository, writeAppContext } from './images.js'
import { freePort, uniqueName } from './net.js'
import { startRegistry, type TestRegistry } from './registry.js'
import { startSshd, type Sshd } from './sshd.js'

export interface Environment {
  name: string
  /** project directory on the host */
  path: string
  /** loopback port the app is published on */
  port: number
  url: string
  /** the .env text sent with each release */
  envFile: string
}

export interface Sandbox {
  id: string
  dir: string
  registry: TestRegistry
  sshd: Sshd
  github: GitHubApi
  /** image repository in the registry, e.g. 127.0.0.1:5000/acme/shop/app */
  image: string
  /** the app's source: Dockerfile and docker-compose.yml */
  workspace: string
  composeFile: string
  envs: Record<'stage' | 'prod', Environment>
  /** rewrites the app's source for a version (healthy or not) */
  writeApp(version: string, healthy?: boolean): void
  /** SSH inputs common to deploy-ssh, rollback and ship */
  sshInputs(): Record<string, string>
  stop(): Promise<void>
}

export const COMPOSE_FILE = `services:
  app:
    # deploy-ssh pins this service to image@sha256:… in each release's override file
    image: \${APP_IMAGE:-app}
    ports:
      - "127.0.0.1:\${APP_PORT}:8080"
    restart: unless-stopped
    mem_limit: 64m
`

/**
 * Containers and networks of the Compose projects whose files live under `root` (this sandbox, or an
 * earlier crashed run) are removed.
 */
function removeSandboxProjects(root: string): void {
  let out = ''
  try {
    out = execFileSync(
      'docker',
      [
        'ps',
        '-a',
        '--filter',
        'label=com.docker.compose.project',
        '--format',
        '{{.ID}} {{.Label "com.docker.compose.project"}} {{.Label "com.docker.compose.project.working_dir"}}'
      ],
      { encoding: 'utf8' }
    )
  } catch {
    return
  }
  const mine = out
    .split('\n')
    .map(l => l.split(' '))
    .filter(([id, , dir]) => id && dir && dir.startsWith(root))
  const ids = mine.map(([id]) => id)
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' })
  for (const project of new Set(mine.map(([, p]) => p))) {
    try {
      const nets = execFileSync(
        'docker',
        ['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`],
        {
          encoding: 'utf8'
        }
      )
        .split('\n')
        .filter(Boolean)
      if (nets.length) execFileSync('docker', ['network', 'rm', ...nets], { stdio: 'ignore' })
    } catch {
      /* in use or gone */
    }
  }
}

export const SANDBOX_ROOT = join(tmpdir(), 'shipline-sandbox')

export async function startSandbox(): Promise<Sandbox> {
  mkdirSync(SANDBOX_ROOT, { recursive: true })
  removeSandboxProjects(SANDBOX_ROOT)
  const id = uniqueName('sb')
  const dir = mkdtempSync(join(SANDBOX_ROOT, `${id}-`))
  const registry = await startRegistry({ auth: 'token' })
  const sshd = await startSshd()
  const github = await startGitHubApi()
  const workspace = join(dir, 'workspace')
  mkdirSync(workspace, { recursive: true })
  const composeFile = join(workspace, 'docker-compose.yml')
  writeFileSync(composeFile, COMPOSE_FILE)
  const envs = {} as Record<'stage' | 'prod', Environment>
  for (const name of ['stage', 'prod'] as const) {
    const port = await freePort()
    envs[name] = {
      name,
      path: join(dir, 'srv', name),
      port,
      url: `http://127.0.0.1:${port}`,
      envFile: `APP_PORT=${port}\nDATABASE_PASSWORD=sandbox-secret-${name}-${id}\n`
    }
  }
  const sandbox: Sandbox = {
    id,
    dir,
    registry,
    sshd,
    github,
    image: `${registry.host}/acme/shop/app`,
    workspace,
    composeFile,
    envs,
    writeApp(version, healthy = true) {
      const app = join(workspace, 'app')
      rmSync(app, { recursive: true, force: true })
      mkdirSync(app, { recursive: true })
      writeAppContext(app, { tag: 'unused', version, healthy })
    },
    sshInputs() {
      return {
        hosts: `root@127.0.0.1:${sshd.port}`,
        'ssh-key': sshd.clientKey.privateKey,
        'known-hosts': sshd.knownHostsLine
      }
    },
    async stop() {
      removeSandboxProjects(dir)
      await Promise.allSettled([registry.stop(), sshd.stop(), github.stop()])
      // the sandbox's images, by reference only: an image id can be shared with other suites' identical builds
      removeRepository(sandbox.image)
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return sandbox
}

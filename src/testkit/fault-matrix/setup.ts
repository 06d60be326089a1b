/**
 * The shared parts of one fault-matrix test file: the pushed app images (each with a digest reference),
 * the compiled deploy child, the temp root, and their clean-up.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, stop as stopEsbuild } from 'esbuild'
import { buildAppImage, removeRepository } from '../images.js'
import { uniqueName } from '../net.js'
import type { TestRegistry } from '../registry.js'
import type { Sshd } from '../sshd.js'

export interface MatrixImages {
  v1: string
  v2: string
  v3: string
  /** healthcheck never passes (its /version says v2) */
  bad: string
  /** a digest the registry does not hold */
  missing: string
}

export interface MatrixEnv {
  sshd: Sshd
  registry: TestRegistry
  repo: string
  images: MatrixImages
  /** compiled deploy-child.mjs */
  childEntry: string
  /** temp root: compose files and the cells' project paths */
  root: string
  healthTimeout: number
  stableSeconds: number
  /** seconds a faulted run may take before the cell cuts its link and calls it hung */
  runDeadlineSec: number
  /** how long the checker waits for the lock to be free */
  lockWaitSec: number
  cleanup(): Promise<void>
}

/** Builds the app images (v1, v2, v3, an unhealthy one) and pushes them, so each has a digest reference. */
export async function prepareMatrix(
  sshd: Sshd,
  registry: TestRegistry,
  opts: Partial<Pick<MatrixEnv, 'healthTimeout' | 'stableSeconds' | 'runDeadlineSec' | 'lockWaitSec'>> = {}
): Promise<MatrixEnv> {
  const repo = `${registry.host}/${uniqueName('faults').toLowerCase()}/app`
  const pinned: Record<string, string> = {}
  for (const [tag, version, healthy] of [
    ['v1', 'v1', true],
    ['v2', 'v2', true],
    ['v3', 'v3', true],
    ['bad', 'v2', false]
  ] as const) {
    buildAppImage({ tag: `${repo}:${tag}`, version, healthy })
    execFileSync('docker', ['push', '-q', `${repo}:${tag}`], { stdio: 'ignore' })
    const digests = execFileSync(
      'docker',
      ['image', 'inspect', '--format', '{{join .RepoDigests "\\n"}}', `${repo}:${tag}`],
      { encoding: 'utf8' }
    )
      .split('\n')
      .filter(d => d.startsWith(`${repo}@sha256:`))
    if (!digests[0]) throw new Error(`no digest reference for ${repo}:${tag} after the push`)
    pinned[tag] = digests[0]
  }
  const child = await compileDeployChild()
  const root = mkdtempSync(join(tmpdir(), 'shipline-faults-'))
  return {
    sshd,
    registry,
    repo,
    images: {
      v1: pinned.v1,
      v2: pinned.v2,
      v3: pinned.v3,
      bad: pinned.bad,
      missing: `${repo}@sha256:${randomBytes(32).toString('hex')}`
    },
    childEntry: child.entry,
    root,
    healthTimeout: opts.healthTimeout ?? 15,
    stableSeconds: opts.stableSeconds ?? 1,
    runDeadlineSec: opts.runDeadlineSec ?? 150,
    lockWaitSec: opts.lockWaitSec ?? 90,
    cleanup: async () => {
      child.remove()
      unfreeze(root)
      rmSync(root, { recursive: true, force: true })
      removeRepository(repo)
    }
  }
}

/**
 * Bundles deploy-child.ts (and the src/lib it imports) with esbuild into a temp dir; npm packages stay
 * external and resolve through a node_modules symlink to the repository's.
 */
export async function compileDeployChild(): Promise<{ entry: string; remove(): void }> {
  // this module is src/testkit/fault-matrix/setup.ts: the repository root is three levels up
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
  const dir = mkdtempSync(join(tmpdir(), 'shipline-fault-child-'))
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
  const entry = join(dir, 'deploy-child.mjs')
  await build({
    entryPoints: [join(root, 'src', 'testkit', 'deploy-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: entry,
    logLevel: 'warning'
  })
  // esbuild keeps a service process for further builds: there are none
  await stopEsbuild()
  return { entry, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** chattr -i on everything under dir (a finish cell's immutable run dir), so it can be removed. */
export function unfreeze(dir: string): void {
  if (!existsSync(dir)) return
  spawnSync('chattr', ['-R', '-f', '-i', dir], { stdio: 'ignore' })
}

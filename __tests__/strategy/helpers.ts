/** Shared bits of the strategy, fleet and swarm tests. */
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildAppImage, removeImages, type AppImageOptions } from '../../src/testkit/images.js'
import type { LoadResult } from '../../src/testkit/load.js'
import { projectName } from '../../src/lib/compose/layout.js'
import type { ImageRef } from '../../src/lib/compose/validate.js'
import type { DeployOptions, Logger } from '../../src/lib/deploy/types.js'

/** Removes the containers and default networks of Compose projects (tests' own, named uniquely). */
export function removeProjects(...projects: string[]): void {
  for (const proj of projects) {
    const ids = execFileSync(
      'docker',
      ['ps', '-aq', '--filter', `label=com.docker.compose.project=${proj}`],
      {
        encoding: 'utf8'
      }
    ).trim()
    if (ids) execFileSync('docker', ['rm', '-f', ...ids.split('\n')], { stdio: 'ignore' })
    try {
      execFileSync('docker', ['network', 'rm', `${proj}_default`], { stdio: 'ignore' })
    } catch {
      /* none */
    }
  }
}

/** The main project of a path and its two blue-green slot projects. */
export const projectsOf = (path: string): string[] => {
  const p = projectName(path)
  return [p, `${p}-blue`, `${p}-green`]
}

/** deploy()'s resolveDigest against a test registry without auth (HEAD of the manifest). */
export function headDigest(registryUrl: string): (ref: ImageRef) => Promise<string> {
  return async ref => {
    const r = await fetch(`${registryUrl}/v2/${ref.repository}/manifests/${ref.tag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }
    })
    return r.headers.get('docker-content-digest') ?? ''
  }
}

/** The last journal entry of a project path, as the test's own shape of it. */
export const lastEntry = <T = { event: string; version: string }>(path: string): T =>
  JSON.parse(readFileSync(`${path}/.shipline/ledger.jsonl`, 'utf8').trim().split('\n').pop()!) as T

/**
 * Writes `<dir>/docker-compose.yml`: one service `web` (the sample app, placeholder image, its port 8080
 * published on loopback at `port`: a number, or `${SHIPLINE_PORT}` for blue-green slots); returns its path.
 */
export function webCompose(dir: string, port: string, memLimit = '32m'): string {
  const file = join(dir, 'docker-compose.yml')
  writeFileSync(
    file,
    [
      'services:',
      '  web:',
      '    image: placeholder',
      '    init: true',
      `    mem_limit: ${memLimit}`,
      '    network_mode: bridge',
      `    ports: ["127.0.0.1:${port}:8080"]`,
      ''
    ].join('\n')
  )
  return file
}

/**
 * The deploy options the strategy tests share: the hosts and how to reach them (e.g. sshFleet(sshd)), the
 * project path, a 60 s health and lock timeout, 1 s stable, auto-rollback, 5 releases kept, digests by HEAD
 * from the test registry.
 */
export function deployCommon(o: {
  link: Pick<DeployOptions, 'hosts' | 'connect'>
  path: string
  log: Logger
  composeFile: string
  registryUrl: string
}): Omit<DeployOptions, 'images' | 'version'> {
  return {
    ...o.link,
    path: o.path,
    healthTimeout: 60,
    lockTimeout: 60,
    log: o.log,
    stableSeconds: 1,
    composeFiles: [o.composeFile],
    autoRollback: true,
    keepReleases: 5,
    resolveDigest: headDigest(o.registryUrl)
  }
}

/** `event version` per final journal entry of a project path (`begin` entries left out). */
export function ledgerEvents(path: string): string[] {
  return readFileSync(`${path}/.shipline/ledger.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map(l => JSON.parse(l) as { event: string; version: string })
    .filter(e => e.event !== 'begin')
    .map(e => `${e.event} ${e.version}`)
}

/** Builds the sample app at `image:<version>` for each version and pushes it (`bad`: never healthy). */
export function pushApps(
  image: string,
  run: string,
  versions: readonly string[],
  opts: (v: string) => Partial<AppImageOptions> = () => ({})
): void {
  for (const v of versions) {
    buildAppImage({ tag: `${image}:${v}`, version: `${v}_${run}`, healthy: v !== 'bad', ...opts(v) })
    execFileSync('docker', ['push', '-q', `${image}:${v}`], { stdio: 'ignore' })
  }
}

/** A deploy test's teardown: the Compose projects of its paths, its parts (any may be unset), images, folder. */
export async function teardown(o: {
  paths: string[]
  parts: ({ stop(): Promise<void> } | undefined)[]
  images: string[]
  dir: string
}): Promise<void> {
  for (const p of o.paths) removeProjects(...projectsOf(p))
  for (const part of o.parts) await part?.stop()
  removeImages(...o.images)
  rmSync(o.dir, { recursive: true, force: true })
}

/** What a load run lost: requests without an answer, non-2xx answers by status, failures by kind. */
export const losses = (res: Pick<LoadResult, 'bad' | 'non2xx' | 'failed'>) => ({
  bad: res.bad,
  non2xx: res.non2xx,
  failed: res.failed
})

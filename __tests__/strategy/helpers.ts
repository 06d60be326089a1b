/** Shared bits of the strategy, fleet and swarm tests. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { projectName } from '../../src/lib/compose/layout.js'
import type { ImageRef } from '../../src/lib/compose/validate.js'

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

/** `event version` per final journal entry of a project path (`begin` entries left out). */
export function ledgerEvents(path: string): string[] {
  return readFileSync(`${path}/.shipline/ledger.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map(l => JSON.parse(l) as { event: string; version: string })
    .filter(e => e.event !== 'begin')
    .map(e => `${e.event} ${e.version}`)
}

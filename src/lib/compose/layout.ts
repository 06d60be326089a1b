/**
 * Where shipline keeps things on a host, under the project path:
 *
 *   <path>/.shipline/                 0700
 *     lock                            flock file (held by a remote process bound to the SSH channel)
 *     current -> releases/<id>        symlink, replaced atomically (ln -s to a temp name + mv -T)
 *     ledger.jsonl                    append-only: one JSON line per deploy, rollback and recovery
 *     releases/<id>/                  one folder per release
 *       <compose files>               as sent, in order
 *       shipline.override.yml         pins every service shipline knows an image for to image@sha256:…
 *       .env                          0600, the env-file input (the one intended secret file)
 *       release.json                  metadata: version, images, time, actor, run URL, services
 *     run/<token>/                    0700, lives only while one deploy holds the lock: a temporary
 *                                     DOCKER_CONFIG and recover.sh; removed when the lock is let go
 */
import { createHash } from 'node:crypto'

const STATE_DIR = '.shipline'
export const OVERRIDE_FILE = 'shipline.override.yml'
export const META_FILE = 'release.json'
export const ENV_FILE = '.env'

export interface Layout {
  path: string
  state: string
  releases: string
  ledger: string
  current: string
  lock: string
  run: string
  project: string
  release(id: string): string
}

/** The Compose project name for a path: fixed, so that every release replaces the previous one's containers. */
export function projectName(path: string): string {
  const base =
    (path.split('/').pop() ?? 'app')
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^[-_]+/, '') || 'app'
  const hash = createHash('sha256').update(path).digest('hex').slice(0, 8)
  return `${base.slice(0, 40)}-${hash}`
}

export function layout(path: string, project = projectName(path)): Layout {
  const state = `${path}/${STATE_DIR}`
  return {
    path,
    state,
    releases: `${state}/releases`,
    ledger: `${state}/ledger.jsonl`,
    current: `${state}/current`,
    lock: `${state}/lock`,
    run: `${state}/run`,
    project,
    release: (id: string) => `${state}/releases/${id}`
  }
}

export type ComposeKind = 'v1' | 'v2'

/** argv prefix for one release's files: `docker compose` (v2) or `docker-compose` (v1). */
export function composeArgv(
  kind: ComposeKind,
  project: string,
  dir: string,
  files: string[],
  envFile?: string
): string[] {
  const head = kind === 'v2' ? ['docker', 'compose'] : ['docker-compose']
  const args = ['--project-name', project, '--project-directory', dir]
  for (const f of files) args.push('--file', `${dir}/${f}`)
  if (envFile) args.push('--env-file', `${dir}/${envFile}`)
  return [...head, ...args]
}

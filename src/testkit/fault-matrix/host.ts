/**
 * Reading a fault-matrix cell's host state: the state dir, what `current` names, the lock, the Compose
 * projects and their running web containers, and what answers HTTP now (serving).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { projectName } from '../../lib/compose/layout.js'
import { sleep } from '../net.js'

export const stateDir = (path: string): string => join(path, '.shipline')

/** The release id `current` names, or undefined. */
export function currentRelease(path: string): string | undefined {
  try {
    const l = readlinkSync(join(stateDir(path), 'current'))
    return l.startsWith('releases/') ? l.slice('releases/'.length) : `?${l}`
  } catch {
    return undefined
  }
}

export function releaseVersion(path: string, id: string | undefined): string | undefined {
  if (!id) return undefined
  try {
    return (
      JSON.parse(readFileSync(join(stateDir(path), 'releases', id, 'release.json'), 'utf8')) as {
        version?: string
      }
    ).version
  } catch {
    return undefined
  }
}

export function lockFree(path: string): boolean {
  const lock = join(stateDir(path), 'lock')
  if (!existsSync(lock)) return true
  return spawnSync('flock', ['-n', lock, 'true'], { stdio: 'ignore' }).status === 0
}

/** Polls `flock -n lock true` until the lock is free or the deadline; true when free. */
export async function waitLockFree(path: string, seconds: number): Promise<boolean> {
  const end = Date.now() + seconds * 1000
  for (;;) {
    if (lockFree(path)) return true
    if (Date.now() > end) return false
    await sleep(250)
  }
}

/** The Compose projects a path's releases run in: the main one and the two blue-green slots. */
export const projectsOf = (path: string): string[] => {
  const p = projectName(path)
  return [p, `${p}-blue`, `${p}-green`]
}

interface WebContainer {
  id: string
  project: string
  health: string
  port?: number
}

function runningWeb(path: string): WebContainer[] {
  const out: WebContainer[] = []
  for (const project of projectsOf(path)) {
    const ids = execFileSync(
      'docker',
      [
        'ps',
        '-q',
        '--filter',
        `label=com.docker.compose.project=${project}`,
        '--filter',
        'label=com.docker.compose.service=web'
      ],
      { encoding: 'utf8' }
    )
      .split('\n')
      .filter(Boolean)
    for (const id of ids) {
      let health = 'gone'
      let port: number | undefined
      try {
        health = execFileSync(
          'docker',
          ['inspect', '--format', '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}', id],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }
        ).trim()
        const ports = execFileSync('docker', ['port', id, '8080/tcp'], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore']
        })
          .trim()
          .split('\n')
        port = Number(ports[0]?.split(':').pop()) || undefined
      } catch {
        /* going away right now */
      }
      out.push({ id, project, health, port })
    }
  }
  return out
}

async function httpVersion(url: string): Promise<string> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) })
    const t = (await r.text()).trim()
    return r.ok ? t : `HTTP ${r.status}`
  } catch {
    return ''
  }
}

export type Serve = { strategy: 'recreate' } | { strategy: 'blue-green'; url: string; includeFile: string }

/** What answers now: the version and whether the container serving it is healthy. */
export async function serving(
  path: string,
  serve: Serve
): Promise<{ version: string; healthy: boolean; detail: string }> {
  const web = runningWeb(path)
  if (serve.strategy === 'recreate') {
    const main = web.filter(w => w.project === projectName(path))
    if (main.length !== 1)
      return { version: '', healthy: false, detail: `${main.length} web containers run in the project` }
    const w = main[0]
    const version = w.port ? await httpVersion(`http://127.0.0.1:${w.port}/version`) : ''
    return { version, healthy: w.health === 'healthy', detail: `web ${w.health}` }
  }
  const version = await httpVersion(`${serve.url}/version`)
  let upstream: number | undefined
  try {
    upstream = Number(/server 127\.0\.0\.1:(\d+);/.exec(readFileSync(serve.includeFile, 'utf8'))?.[1])
  } catch {
    /* no include file */
  }
  const behind = web.find(w => w.port === upstream)
  return {
    version,
    healthy: behind?.health === 'healthy',
    detail: behind
      ? `${behind.project.split('-').pop()} slot ${behind.health}`
      : `nothing on upstream port ${upstream}`
  }
}

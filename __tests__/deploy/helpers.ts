/** Shared parts for the deploy/rollback tests: a real sshd as the compose host, real registry, app images. */
import { execFileSync } from 'node:child_process'
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectSsh } from '../../src/lib/ssh/client.js'
import type { Remote } from '../../src/lib/ssh/remote.js'
import { projectName } from '../../src/lib/compose/layout.js'
import type { ImageRef } from '../../src/lib/compose/validate.js'
import { RegistryClient } from '../../src/lib/registry/index.js'
import type { Sshd } from '../../src/testkit/sshd.js'
import { uniqueName, sleep } from '../../src/testkit/net.js'

/** The sample app's compose file: an ephemeral published port (each host path gets its own). */
export function composeYaml(opts: { healthOverride?: boolean } = {}): string {
  const lines = [
    'version: "3.8"',
    'services:',
    '  web:',
    '    image: placeholder.invalid/set-by-shipline:0',
    '    init: true',
    '    stop_grace_period: 1s',
    '    ports: ["127.0.0.1::8080"]',
    '    environment:',
    '      APP_SECRET: ${APP_SECRET:-}'
  ]
  if (opts.healthOverride) {
    // a host whose .env names BAD_VERSION refuses that version (the fleet test's one failing host)
    lines.push(
      '    healthcheck:',
      `      test: ["CMD-SHELL", "! grep -qx '\${BAD_VERSION:-none}' /www/version && wget -q -O /dev/null http://127.0.0.1:8080/health"]`,
      '      interval: 1s',
      '      timeout: 2s',
      '      retries: 2'
    )
  }
  return lines.join('\n') + '\n'
}

export interface Workspace {
  dir: string
  compose: string
  /** project paths on the "host" made under one temp root */
  path(name?: string): string
  cleanup(): void
}

export function workspace(opts: { healthOverride?: boolean } = {}): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-deploy-ws-'))
  const hostRoot = mkdtempSync(join(tmpdir(), 'shipline-deploy-host-'))
  const compose = join(dir, 'docker-compose.yml')
  writeFileSync(compose, composeYaml(opts))
  const paths: string[] = []
  return {
    dir,
    compose,
    path(name = uniqueName('app').toLowerCase()) {
      const p = join(hostRoot, name)
      paths.push(p)
      return p
    },
    cleanup() {
      for (const p of paths) removeProject(p)
      rmSync(dir, { recursive: true, force: true })
      rmSync(hostRoot, { recursive: true, force: true })
    }
  }
}

export function removeProject(path: string, project = projectName(path)): void {
  const ids = execFileSync(
    'docker',
    ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`],
    { encoding: 'utf8' }
  )
    .split('\n')
    .filter(Boolean)
  if (ids.length) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' })
  try {
    execFileSync('docker', ['network', 'rm', `${project}_default`], { stdio: 'ignore' })
  } catch {
    /* none */
  }
}

/** The published port of the project's web container now (it changes when the container is recreated). */
export function webPort(path: string): number | undefined {
  const id = execFileSync(
    'docker',
    [
      'ps',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${projectName(path)}`,
      '--filter',
      'label=com.docker.compose.service=web'
    ],
    { encoding: 'utf8' }
  ).trim()
  if (!id || id.includes('\n')) return undefined
  try {
    const out = execFileSync('docker', ['port', id, '8080/tcp'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore']
    })
      .trim()
      .split('\n')[0]
    return Number(out.split(':').pop()) || undefined
  } catch {
    return undefined // being created or stopped right now
  }
}

/**
 * What the project's web container answers on /version, or, when nothing answers, why, in brackets (so
 * a failed expectation says what was seen: no container, or the request's error).
 */
export async function liveVersion(path: string): Promise<string> {
  const port = webPort(path)
  if (!port) return '(no single running web container with a published port)'
  try {
    const r = await fetch(`http://127.0.0.1:${port}/version`, { signal: AbortSignal.timeout(10_000) })
    return r.ok ? (await r.text()).trim() : `(HTTP ${r.status})`
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } }
    return `(${err.cause?.code ?? err.name}: ${err.message})`
  }
}

/** Polls until the live version is `want` (or the deadline); returns what was seen last. */
export async function eventuallyVersion(path: string, want: string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms
  let seen = ''
  while (Date.now() < end) {
    seen = await liveVersion(path)
    if (seen === want) return seen
    await sleep(250)
  }
  return seen
}

export function connectTo(
  sshd: Sshd,
  extra: { knownHosts?: string; privateKey?: string; fingerprints?: string[] } = {}
): (label: string) => Promise<Remote> {
  return () =>
    connectSsh({
      target: { host: sshd.host, port: sshd.port, user: sshd.user },
      privateKey: extra.privateKey ?? sshd.clientKey.privateKey,
      knownHosts: extra.knownHosts ?? sshd.knownHostsLine,
      fingerprints: extra.fingerprints
    })
}

export function digestResolver(registry: {
  host: string
  username?: string
  password?: string
}): (ref: ImageRef) => Promise<string> {
  const c = new RegistryClient({
    registry: registry.host,
    username: registry.username || undefined,
    password: registry.password || undefined
  })
  return async ref => (await c.resolve(ref.repository, ref.tag ?? 'latest')).digest
}

export const quietLog = (): { info(m: string): void; warning(m: string): void; lines: string[] } => {
  const lines: string[] = []
  return { lines, info: m => void lines.push(m), warning: m => void lines.push(`WARN ${m}`) }
}

/** The journal's final entries (each transaction's outcome; its write-ahead `begin` entries left out). */
export function readLedger(path: string): Record<string, unknown>[] {
  try {
    return execFileSync('cat', [join(path, '.shipline', 'ledger.jsonl')], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l) as Record<string, unknown>)
      .filter(e => e.event !== 'begin')
  } catch {
    return []
  }
}

export function ensureDir(p: string): void {
  mkdirSync(p, { recursive: true })
}

/** Watches every process's command line (from /proc, every 10 ms) for any of the needles until stop(). */
export function argvWatch(needles: string[]): { stop(): string[]; scans(): number } {
  const hits = new Set<string>()
  let scans = 0
  const scan = (): void => {
    scans++
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      let args: string
      try {
        args = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      } catch {
        continue
      }
      for (const n of needles) if (n && args.includes(n)) hits.add(args.replace(/\0/g, ' ').slice(0, 300))
    }
  }
  const timer = setInterval(scan, 10)
  return {
    scans: () => scans,
    stop: () => {
      clearInterval(timer)
      scan()
      return [...hits]
    }
  }
}

/** Files under dir (recursively) whose content holds any needle; `except` are paths allowed to. */
export function filesHolding(
  dir: string,
  needles: string[],
  except: (p: string) => boolean = () => false
): string[] {
  const out: string[] = []
  const walk = (d: string): void => {
    let entries: string[]
    try {
      entries = readdirSync(d)
    } catch {
      return
    }
    for (const e of entries) {
      const p = join(d, e)
      const st = lstatSync(p)
      if (st.isDirectory()) walk(p)
      else if (st.isFile() && !except(p)) {
        const text = readFileSync(p, 'utf8')
        if (needles.some(n => n && text.includes(n))) out.push(p)
      }
    }
  }
  walk(dir)
  return out
}

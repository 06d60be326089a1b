/**
 * The fault matrix: for each remote step of a deploy (lock, upload, pull, up, health, switch, finish,
 * put-back) or rollback, and each fault (the SSH link cut, the runner SIGKILLed, a remote command failing
 * for a real reason), one cell: a fresh project path with a v1 baseline, the faulted run, then the host is
 * checked (checkInvariants) and one more deploy (v3) must work.
 *
 * Everything is real: the sshd fixture is the host, Docker + docker-compose v1 run the releases, a
 * docker-registry holds the images, nginx fronts blue-green. Faults:
 *  - link  a tcp-cut forwarder (tcp-cut.ts) sits between the library and sshd; cut() at the step
 *  - kill  the run happens in a child process (deploy-child.ts), SIGKILLed when it prints the step
 *  - fail  the step's command fails for a real reason on the host (a held flock, a file where the release
 *          folder goes, a digest the registry lacks, a host port taken, an image that never turns healthy,
 *          a directory where current.tmp goes, an immutable run dir, the previous release's port taken)
 *
 * The steps are seen through the library's onStep hook (Common.onStep). A cell whose trigger event never
 * arrives did not get its fault: it is reported "pending", never counted as holding.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build, stop as stopEsbuild } from 'esbuild'
import { projectName } from '../lib/compose/layout.js'
import { isUserError } from '../lib/errors.js'
import type { RemoteStep, StepEvent } from '../lib/deploy/types.js'
import { lastFinal, openTransaction, parseJournal, type JournalEntry } from '../lib/release/journal.js'
import { upstreamName } from '../lib/strategy/blue-green.js'
import { runJob, type ChildJob } from './deploy-child.js'
import { buildAppImage, removeRepository } from './images.js'
import { freePort, sleep, uniqueName } from './net.js'
import { startNginx, type Nginx } from './nginx.js'
import type { TestRegistry } from './registry.js'
import type { Sshd } from './sshd.js'
import { startTcpCut, type TcpCut } from './tcp-cut.js'
import { mapLimit } from '../lib/pool.js'

export type Strategy = 'recreate' | 'blue-green'
export type Fault = 'link' | 'kill' | 'fail'
export const FAULTS: Fault[] = ['link', 'kill', 'fail']
export const FAULT_NAMES: Record<Fault, string> = {
  link: 'SSH link cut',
  kill: 'runner SIGKILL',
  fail: 'command fails'
}
export const DEPLOY_STEPS: RemoteStep[] = [
  'lock',
  'upload',
  'pull',
  'up',
  'health',
  'switch',
  'finish',
  'put-back'
]
/** rollback cells: `up` is the target's up (a library may report it as put-back: either event triggers) */
export const ROLLBACK_STEPS: RemoteStep[] = ['lock', 'pull', 'up', 'health', 'switch', 'finish']

export interface Cell {
  strategy: Strategy
  kind: 'deploy' | 'rollback'
  step: RemoteStep
  fault: Fault
}

export const cellName = (c: Cell): string =>
  `${c.kind === 'rollback' ? 'rollback ' : ''}${c.step} × ${c.fault}`

/** Every cell of a strategy's deploy matrix, or of the rollback matrix. */
export function cells(strategy: Strategy, kind: 'deploy' | 'rollback' = 'deploy'): Cell[] {
  const steps = kind === 'deploy' ? DEPLOY_STEPS : ROLLBACK_STEPS
  const faults: Fault[] = kind === 'deploy' ? FAULTS : ['link', 'kill']
  return steps.flatMap(step => faults.map(fault => ({ strategy, kind, step, fault })))
}

/**
 * When a link cut or a kill lands. `start`/`end`: the moment the library reports that phase; `delayMs`
 * after it (the health wait: "during"). Several triggers: the first that happens.
 */
export interface Trigger {
  step: RemoteStep
  phase: 'start' | 'end'
  delayMs?: number
}

export function triggersFor(c: Cell): Trigger[] {
  if (c.kind === 'rollback') {
    switch (c.step) {
      case 'up':
        return [
          { step: 'up', phase: 'end' },
          { step: 'put-back', phase: 'start', delayMs: 1500 }
        ]
      case 'health':
        // the target is healthy within ~1 s: cut as the wait begins, not later (that would be a race)
        return [{ step: 'health', phase: 'start' }]
      case 'switch':
      case 'finish':
        return [{ step: c.step, phase: 'start' }]
      default:
        return [{ step: c.step, phase: 'end' }]
    }
  }
  switch (c.step) {
    case 'health':
      // the attempted image never turns healthy (fails after ~3 s), so +1 s is inside the wait
      return [{ step: 'health', phase: 'start', delayMs: 1000 }]
    case 'switch':
    case 'finish':
    case 'put-back':
      return [{ step: c.step, phase: 'start' }]
    default:
      return [{ step: c.step, phase: 'end' }]
  }
}

export const describeTrigger = (ts: Trigger[]): string =>
  ts.map(t => `${t.step} ${t.phase}${t.delayMs ? ` +${t.delayMs / 1000}s` : ''}`).join(' or ')

// ---------------------------------------------------------------------------------------------------------
// the shared parts of one test file

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
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
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

/**
 * Makes <state>/current.tmp a non-empty directory that cannot be removed (chattr +i), so pointing
 * `current` anywhere through it fails, even for a switch that first runs rm -rf current.tmp. Returns the undo.
 */
function blockCurrentTmp(state: string): () => void {
  const tmp = join(state, 'current.tmp')
  mkdirSync(join(tmp, 'obstacle'), { recursive: true })
  spawnSync('chattr', ['+i', tmp], { stdio: 'ignore' })
  let undone = false
  return () => {
    if (undone) return
    undone = true
    spawnSync('chattr', ['-i', tmp], { stdio: 'ignore' })
    rmSync(tmp, { recursive: true, force: true })
  }
}

/** chattr -i on everything under dir (a finish cell's immutable run dir), so it can be removed. */
function unfreeze(dir: string): void {
  if (!existsSync(dir)) return
  spawnSync('chattr', ['-R', '-f', '-i', dir], { stdio: 'ignore' })
}

// ---------------------------------------------------------------------------------------------------------
// compose files

function composeText(strategy: Strategy, fixedPort?: number): string {
  const ports = strategy === 'blue-green' ? ['"127.0.0.1:${SHIPLINE_PORT}:8080"'] : ['"127.0.0.1::8080"']
  if (fixedPort) ports.push(`"127.0.0.1:${fixedPort}:8080"`)
  return (
    [
      'services:',
      '  web:',
      '    image: placeholder.invalid/set-by-shipline:0',
      '    init: true',
      '    stop_grace_period: 1s',
      '    mem_limit: 32m',
      // the default bridge: no network per project (cheaper, and the engine's address pools are few)
      '    network_mode: bridge',
      `    ports: [${ports.join(', ')}]`
    ].join('\n') + '\n'
  )
}

// ---------------------------------------------------------------------------------------------------------
// host state

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

// ---------------------------------------------------------------------------------------------------------
// the checker

export interface RunResult {
  status: string
  error?: string
  /** the library threw (a UserError) instead of returning a result */
  threw?: boolean
  hosts?: { status: string; message?: string }[]
}

export interface CheckOptions {
  kind: 'deploy' | 'rollback'
  serve: Serve
  /** the release live before the faulted run */
  previous: string
  /** the release it tried to make live (deploy: the new one; rollback: the target) */
  attempted?: string
  /** what the run returned; undefined when the runner was killed */
  result?: RunResult
  expectStatus?: string
  /** both releases are broken on purpose (put-back fault): nothing serving is expected */
  allowOutage?: boolean
  lockWaitSec?: number
  serveWaitSec?: number
}

export interface CheckReport {
  ok: boolean
  /** e.g. `failed · v1 serves · current=v1 · last=recovered v1 · lock free` */
  outcome: string
  problems: string[]
  /** deployed / rolled-back / failed as the host shows it */
  hostStatus: string
  current?: string
  currentVersion?: string
  last?: JournalEntry
  served?: string
}

const ROLLED_BACK_EVENTS = ['auto-rollback', 'recovered', 'revert']

/**
 * Waits (bounded) for the lock to be free, then checks the host: the run dir is empty; every ledger line
 * parses, no transaction is left open and the last final entry names what `current` names; `current`
 * points at a release with a release.json; a healthy container serves exactly that release's version (for
 * blue-green through nginx); and the run's status matches the host (deployed ⇔ the last final entry is the
 * attempted release's `deploy` and current names it; rolled-back ⇔ the previous release is current and the
 * last final entry is auto-rollback/recovered/revert; failed otherwise, with a non-empty error).
 */
export async function checkInvariants(path: string, o: CheckOptions): Promise<CheckReport> {
  const problems: string[] = []
  const s = stateDir(path)
  const free = await waitLockFree(path, o.lockWaitSec ?? 90)
  if (!free) problems.push(`lock still held after ${o.lockWaitSec ?? 90}s`)
  let run: string[] = []
  try {
    run = readdirSync(join(s, 'run'))
  } catch {
    /* none */
  }
  if (free && run.length) problems.push(`run/ holds ${run.join(', ')} with the lock free`)

  let entries: JournalEntry[] = []
  try {
    const j = parseJournal(readFileSync(join(s, 'ledger.jsonl'), 'utf8'))
    entries = j.entries
    if (j.damaged.length)
      problems.push(
        `ledger lines that do not parse: ${j.damaged.map(d => `${d.line}: ${d.text.slice(0, 80)}`).join('; ')}`
      )
  } catch {
    problems.push('no ledger')
  }
  const open = openTransaction(entries)
  if (open)
    problems.push(`ledger ends on an open transaction (begin ${open.txn ?? ''} of ${open.attempted ?? '?'})`)
  const last = lastFinal(entries)
  const current = currentRelease(path)
  const currentVersion = releaseVersion(path, current)
  if (!current) problems.push('current names nothing')
  else if (!currentVersion) problems.push(`current names ${current}, which has no release.json`)
  if (!last) problems.push('no final ledger entry')
  else if (last.release !== current)
    problems.push(
      `last final entry (${last.event} ${last.version ?? ''} ${last.release}) is not what current names (${current})`
    )
  else if (last.version && currentVersion && last.version !== currentVersion)
    problems.push(`last final entry says version ${last.version}, current's release.json ${currentVersion}`)

  // what serves (bounded wait: a recovered container may still be starting its healthcheck)
  const end = Date.now() + (o.serveWaitSec ?? 20) * 1000
  let seen = await serving(path, o.serve)
  while (!(seen.version === currentVersion && seen.healthy) && Date.now() < end) {
    await sleep(500)
    seen = await serving(path, o.serve)
  }
  const outage = !seen.version || /^HTTP /.test(seen.version)
  if (outage && o.allowOutage) {
    /* both releases broken on purpose */
  } else if (!currentVersion || seen.version !== currentVersion)
    problems.push(
      `serves ${seen.version || 'nothing'} (${seen.detail}), current is ${currentVersion ?? 'nothing'}`
    )
  else if (!seen.healthy) problems.push(`${seen.version} serves but is not healthy (${seen.detail})`)

  // the status the host shows
  let hostStatus = 'failed'
  const v = (id?: string): string => releaseVersion(path, id) ?? id ?? '?'
  if (o.kind === 'deploy') {
    if (o.attempted && current === o.attempted && last?.event === 'deploy' && last.release === o.attempted)
      hostStatus = 'deployed'
    else if (current === o.previous && last && ROLLED_BACK_EVENTS.includes(last.event))
      hostStatus = 'rolled-back'
  } else if (
    o.attempted &&
    current === o.attempted &&
    last?.event === 'rollback' &&
    last.release === o.attempted
  )
    hostStatus = 'rolled-back'
  if (o.result) {
    if (o.result.status !== hostStatus)
      problems.push(
        `status ${o.result.status}, the host shows ${hostStatus}${o.result.error ? ` (error: ${o.result.error.slice(0, 160)})` : ''}`
      )
    if (o.result.status === 'failed' && !o.result.error?.trim())
      problems.push('status failed with an empty error')
    const h = o.result.hosts?.[0]?.status
    if (h && h !== o.result.status && !(o.result.status === 'rolled-back' && h === 'reverted'))
      problems.push(`hosts[0].status ${h} differs from status ${o.result.status}`)
  }
  if (o.expectStatus && hostStatus !== o.expectStatus)
    problems.push(`expected ${o.expectStatus}, the host shows ${hostStatus}`)

  const parts = [
    o.result ? `${o.result.status}${o.result.threw ? ' (threw)' : ''}` : 'killed',
    outage ? (o.allowOutage ? 'nothing serves (both broken)' : 'nothing serves') : `${seen.version} serves`,
    `current=${currentVersion ?? current ?? 'none'}`,
    `last=${last ? `${last.event} ${v(last.release)}` : 'none'}`,
    free ? 'lock free' : 'LOCK HELD'
  ]
  return {
    ok: problems.length === 0,
    outcome: parts.join(' · '),
    problems,
    hostStatus,
    current,
    currentVersion,
    last,
    served: seen.version
  }
}

// ---------------------------------------------------------------------------------------------------------
// one cell

export interface CellOutcome {
  cell: Cell
  ok: boolean
  /** the fault did not happen (its trigger event never came): the cell proves nothing yet */
  pending: boolean
  outcome: string
  problems: string[]
  /** the steps reported during the faulted run (`step phase`) */
  steps: string[]
  ms: number
  log: string
}

interface OwnImage {
  repo: string
  /** repo@sha256:… */
  ref: string
  /** deletes the manifest from the registry and every reference on the host */
  remove(): Promise<void>
}

/** A cell's own v1 build (its own repository and digest), so removing it touches no other cell. */
async function ownImage(env: MatrixEnv, version: string): Promise<OwnImage> {
  const repo = `${env.repo.replace(/\/app$/, '')}/own-${randomBytes(4).toString('hex')}`
  buildAppImage({ tag: `${repo}:${version}`, version })
  execFileSync('docker', ['push', '-q', `${repo}:${version}`], { stdio: 'ignore' })
  const ref = execFileSync(
    'docker',
    ['image', 'inspect', '--format', '{{join .RepoDigests "\\n"}}', `${repo}:${version}`],
    {
      encoding: 'utf8'
    }
  )
    .split('\n')
    .find(d => d.startsWith(`${repo}@sha256:`))
  if (!ref) throw new Error(`no digest reference for ${repo}:${version}`)
  const name = repo.slice(env.registry.host.length + 1)
  return {
    repo,
    ref,
    remove: async () => {
      const r = await fetch(`${env.registry.url}/v2/${name}/manifests/${ref.split('@')[1]}`, {
        method: 'DELETE'
      })
      await r.arrayBuffer()
      if (r.status !== 202) throw new Error(`registry DELETE of the manifest answered ${r.status}`)
      removeRepository(repo)
      const left = execFileSync('docker', ['images', '-q', repo], { encoding: 'utf8' }).trim()
      if (left) throw new Error(`${repo} still has images on the host: ${left}`)
    }
  }
}

/** A port held by a plain TCP server of the test (a host port "another process" uses). */
async function holdPort(port?: number): Promise<{ port: number; server: Server }> {
  const p = port ?? (await freePort())
  const server = createServer(s => s.destroy())
  await new Promise<void>((res, rej) => {
    server.once('error', rej)
    server.listen(p, '127.0.0.1', () => res())
  })
  return { port: p, server }
}

const closeServer = (s?: Server): Promise<void> => new Promise(r => (s ? s.close(() => r()) : r()))

interface CellCtx {
  env: MatrixEnv
  cell: Cell
  path: string
  dir: string
  serve: Serve
  nginx?: Nginx
  slotPorts?: [number, number]
  log: string[]
  t0: number
}

/** A line of the cell's log, with the seconds since the cell started. */
function note(ctx: CellCtx, m: string): void {
  ctx.log.push(`+${((Date.now() - ctx.t0) / 1000).toFixed(1)}s ${m}`)
}

function jobFor(ctx: CellCtx, over: Partial<ChildJob>, sshPort?: number): ChildJob {
  const { env } = ctx
  const port = sshPort ?? env.sshd.port
  const knownHosts = env.sshd.knownHostsLine.replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${port}`)
  return {
    kind: 'deploy',
    ssh: {
      host: '127.0.0.1',
      port,
      user: env.sshd.user,
      privateKey: env.sshd.clientKey.privateKey,
      knownHosts
    },
    path: ctx.path,
    healthTimeout: env.healthTimeout,
    lockTimeout: 60,
    stableSeconds: env.stableSeconds,
    autoRollback: true,
    keepReleases: 5,
    blueGreen:
      ctx.cell.strategy === 'blue-green'
        ? {
            ports: { web: ctx.slotPorts! },
            includeDir: join(ctx.path, 'nginx'),
            testCommand: ctx.nginx!.testCommand,
            reloadCommand: ctx.nginx!.reloadCommand,
            drainSeconds: 0,
            minFreeMiB: 16
          }
        : undefined,
    ...over
  }
}

function composeFile(ctx: CellCtx, name: string, fixedPort?: number): string {
  const f = join(ctx.dir, `${name}.yml`)
  writeFileSync(f, composeText(ctx.cell.strategy, fixedPort))
  return f
}

/** A plain deploy/rollback in this process, straight to sshd (baselines and the next deploy). */
async function plain(ctx: CellCtx, over: Partial<ChildJob>): Promise<RunResult & { releaseId?: string }> {
  const r = (await runJob(jobFor(ctx, over), {
    log: { info: m => void note(ctx, m), warning: m => void note(ctx, `WARN ${m}`) },
    onStep: e => note(ctx, `step ${e.step} ${e.phase}`)
  })) as RunResult & { releaseId?: string }
  return r
}

interface Injection {
  /** before the run */
  setup?(): Promise<void>
  /** on every step event of the run (awaited: the library waits for it) */
  onStep?(e: StepEvent, planned?: string): Promise<void> | void
  /** after the run returned, before the check (undo what would block the host's own recovery) */
  afterRun?(): Promise<void>
  /** after the check, before the next deploy */
  afterCheck?(): Promise<void>
  /** the fault happened (for the pending verdict) */
  fired(): boolean
  job: Partial<ChildJob>
  expectStatus?: string
  allowOutage?: boolean
  note?: string
}

const VERSION = 'v2'

/** The command-fails fault of a step, with the real cause that makes it fail. */
async function commandFault(
  ctx: CellCtx,
  base: { std: string; v1Compose: string; ownV1?: OwnImage }
): Promise<Injection> {
  const { env, cell, path } = ctx
  const s = stateDir(path)
  const { std } = base
  const deployJob = (over: Partial<ChildJob> = {}): Partial<ChildJob> => ({
    version: VERSION,
    composeFiles: [std],
    images: [`web=${env.images.v2}`],
    ...over
  })
  let fired = false
  switch (cell.step) {
    case 'lock': {
      // another holder keeps the lock; lock-timeout 2
      const holder = spawn('flock', [join(s, 'lock'), 'sleep', '600'], { stdio: 'ignore', detached: true })
      const release = async (): Promise<void> => {
        try {
          process.kill(-holder.pid!, 'SIGKILL')
        } catch {
          /* gone */
        }
        await waitLockFree(path, 10)
      }
      return {
        job: deployJob({ lockTimeout: 2 }),
        setup: async () => {
          const end = Date.now() + 10_000
          while (lockFree(path) && Date.now() < end) await sleep(50)
          fired = !lockFree(path)
        },
        afterRun: release,
        fired: () => fired,
        expectStatus: 'failed',
        note: 'another process holds the flock; lock-timeout 2'
      }
    }
    case 'upload':
      return {
        job: deployJob(),
        onStep: (e, planned) => {
          if (e.step === 'upload' && e.phase === 'start' && !fired) {
            const id = e.release ?? planned
            if (!id) return
            writeFileSync(join(s, 'releases', id), 'not a folder\n')
            fired = true
          }
        },
        fired: () => fired,
        expectStatus: 'failed',
        note: 'a regular file where releases/<id> goes'
      }
    case 'pull':
      fired = true
      return {
        job: deployJob({ images: [`web=${env.images.missing}`] }),
        fired: () => fired,
        expectStatus: 'failed',
        note: 'a digest the registry does not hold'
      }
    case 'up': {
      const held = await holdPort()
      fired = true
      return {
        job: deployJob({ composeFiles: [composeFile(ctx, 'v2-fixed-port', held.port)] }),
        afterCheck: () => closeServer(held.server),
        fired: () => fired,
        note: `the new compose file also publishes 127.0.0.1:${held.port}, which a test process holds`
      }
    }
    case 'health':
      fired = true
      return {
        job: deployJob({ images: [`web=${env.images.bad}`] }),
        fired: () => fired,
        expectStatus: 'rolled-back',
        note: 'an image whose healthcheck never passes'
      }
    case 'switch': {
      let undo: (() => void) | undefined
      return {
        job: deployJob(),
        onStep: e => {
          if (e.step === 'switch' && e.phase === 'start' && !fired) {
            undo = blockCurrentTmp(s)
            fired = true
          } else if (fired && !(e.step === 'switch' && e.phase === 'start')) undo?.()
        },
        afterRun: async () => undo?.(),
        fired: () => fired,
        note: '.shipline/current.tmp is a non-empty, immutable directory during the switch'
      }
    }
    case 'finish': {
      let frozen: string[] = []
      let timer: NodeJS.Timeout | undefined
      const thaw = (): void => {
        if (timer) clearTimeout(timer)
        for (const d of frozen) spawnSync('chattr', ['-i', d], { stdio: 'ignore' })
        frozen = []
      }
      return {
        job: deployJob(),
        onStep: e => {
          if (e.step === 'finish' && e.phase === 'start' && !fired) {
            const run = join(s, 'run')
            for (const d of readdirSync(run)) {
              const p = join(run, d)
              if (spawnSync('chattr', ['+i', p], { stdio: 'ignore' }).status === 0) frozen.push(p)
            }
            fired = frozen.length > 0
            // a transient fault: gone at finish end, or after 5 s at the latest
            timer = setTimeout(thaw, 5000)
          } else if (e.step === 'finish' && e.phase === 'end') thaw()
        },
        afterRun: async () => thaw(),
        fired: () => fired,
        note: 'the per-deploy run dir is immutable (chattr +i) during finish (until finish end, 5 s at most)'
      }
    }
    case 'put-back': {
      if (cell.strategy === 'recreate') {
        // v1's compose publishes a fixed port; v2 (never healthy) replaces it, then the port is taken
        let held: { port: number; server: Server } | undefined
        const port = Number(/127\.0\.0\.1:(\d+):8080/.exec(readFileSync(base.v1Compose, 'utf8'))?.[1])
        return {
          job: deployJob({ images: [`web=${env.images.bad}`] }),
          onStep: async e => {
            if (e.step === 'health' && e.phase === 'start' && !held) {
              try {
                held = await holdPort(port)
                fired = true
              } catch (err) {
                note(ctx, `could not take port ${port}: ${String(err)}`)
              }
            }
          },
          afterCheck: () => closeServer(held?.server),
          fired: () => fired,
          expectStatus: 'failed',
          allowOutage: true,
          note: `v2 never turns healthy and v1's fixed port ${port} is taken once v2 replaced it`
        }
      }
      // blue-green: after a health failure the put-back only removes the idle slot (the old one still
      // serves), so it is real work only after the switch failed past nginx's cut-over: current.tmp blocks
      // the switch, then v1's image (this cell's own build) is removed from the registry and the host
      let undo: (() => void) | undefined
      const v1 = base.ownV1!
      return {
        job: deployJob(),
        onStep: async e => {
          if (e.step === 'switch' && e.phase === 'start' && !undo) undo = blockCurrentTmp(s)
          if (e.step === 'put-back' && e.phase === 'start' && !fired) {
            undo?.()
            fired = await v1.remove().then(
              () => true,
              err => (note(ctx, `could not remove ${v1.ref}: ${String(err)}`), false)
            )
          }
        },
        afterRun: async () => undo?.(),
        fired: () => fired,
        // the close step makes the new pointer before nginx's cut-over: the switch fails with nginx still on
        // v1's slot, so the put-back has nothing to start and v1 keeps serving
        expectStatus: 'rolled-back',
        note: `the switch fails (current.tmp immutable) before nginx moves; v1's image is removed from registry and host`
      }
    }
  }
}

/** Runs one job in this process with a step hook; a run that outlives the deadline gets its link cut. */
async function inProcess(
  ctx: CellCtx,
  job: ChildJob,
  proxy: TcpCut,
  hook: (e: StepEvent, planned?: string) => Promise<void> | void
): Promise<{ result?: RunResult; planned?: string; hung: boolean; error?: string }> {
  let planned: string | undefined
  let hung = false
  const run = runJob(job, {
    log: { info: m => void note(ctx, m), warning: m => void note(ctx, `WARN ${m}`) },
    onPlanned: p => void (planned = p.releaseId),
    onStep: e => (note(ctx, `step ${e.step} ${e.phase}`), hook(e, planned))
  }).then(
    r => ({ result: r as RunResult }),
    e => ({ error: String((e as Error)?.message ?? e), userError: isUserError(e) })
  )
  const deadline = ctx.env.runDeadlineSec * 1000
  let timer: NodeJS.Timeout | undefined
  const first = await Promise.race([
    run,
    new Promise<'deadline'>(r => (timer = setTimeout(() => r('deadline'), deadline)))
  ])
  clearTimeout(timer)
  let out: { result?: RunResult; error?: string; userError?: boolean }
  if (first === 'deadline') {
    hung = true
    proxy.cut()
    out = await Promise.race([
      run,
      sleep(60_000).then(() => ({ error: 'still running 60 s after its link was cut' }))
    ])
  } else out = first
  // the library refuses (a UserError: a held lock, a bad input) by throwing: a failed run with that
  // message, as the action reports it; anything else thrown is a bug of its own
  const result =
    out.result ?? (out.error !== undefined ? { status: 'failed', error: out.error, threw: true } : undefined)
  return { result, planned, hung, error: out.userError ? undefined : out.error }
}

/** Runs one job in a child process and SIGKILLs it at the first trigger line. */
async function inChild(
  ctx: CellCtx,
  job: ChildJob,
  triggers: Trigger[]
): Promise<{ result?: RunResult; planned?: string; killed: boolean; steps: string[]; hung: boolean }> {
  const child = spawn(process.execPath, [ctx.env.childEntry], {
    env: { ...process.env, SHIPLINE_DEPLOY_CHILD: '1' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  child.stdin.end(JSON.stringify(job))
  const steps: string[] = []
  let planned: string | undefined
  let result: RunResult | undefined
  let killed = false
  let hung = false
  let buf = ''
  const kill = (): void => {
    if (killed || child.exitCode !== null) return
    killed = true
    child.kill('SIGKILL')
  }
  child.stderr.on('data', d => note(ctx, String(d).trimEnd()))
  child.stdout.on('data', d => {
    buf += d
    let i
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      if (line.startsWith('PLAN ')) planned = line.slice(5).trim()
      else if (line.startsWith('RESULT ')) result = JSON.parse(line.slice(7)) as RunResult
      else if (line.startsWith('ERROR ')) note(ctx, `child: ${line}`)
      else if (line.startsWith('STEP ')) {
        const [, step, phase] = line.split(' ')
        steps.push(`${step} ${phase}`)
        const t = triggers.find(x => x.step === step && x.phase === phase)
        if (t && !killed) {
          if (t.delayMs) setTimeout(kill, t.delayMs)
          else kill()
        }
      }
    }
  })
  const exited = new Promise<void>(r => child.once('exit', () => r()))
  const deadline = setTimeout(() => {
    hung = true
    kill()
  }, ctx.env.runDeadlineSec * 1000)
  await exited
  clearTimeout(deadline)
  return { result: killed && !hung ? undefined : result, planned, killed: killed && !hung, steps, hung }
}

/** Runs one cell end to end and never throws: every surprise becomes a problem of the cell. */
export async function runCell(env: MatrixEnv, cell: Cell): Promise<CellOutcome> {
  const t0 = Date.now()
  const dir = mkdtempSync(join(env.root, 'cell-'))
  const path = join(
    dir,
    `app-${cell.step}-${cell.fault}-${randomBytes(3).toString('hex')}`.replace(/[^a-z0-9-]/g, '')
  )
  const ctx: CellCtx = { env, cell, path, dir, serve: { strategy: 'recreate' }, log: [], t0 }
  const problems: string[] = []
  const steps: string[] = []
  let outcome = ''
  let pending = false
  const cleanups: (() => Promise<void> | void)[] = []
  try {
    if (cell.strategy === 'blue-green') {
      mkdirSync(join(path, 'nginx'), { recursive: true })
      ctx.nginx = await startNginx({
        includeFile: join(path, 'nginx', 'web.conf'),
        upstreamName: upstreamName('web')
      })
      cleanups.push(() => ctx.nginx!.stop())
      ctx.slotPorts = [await freePort(), await freePort()]
      ctx.serve = { strategy: 'blue-green', url: ctx.nginx.url, includeFile: join(path, 'nginx', 'web.conf') }
    }
    // the baseline: v1 (for rollback cells v1 then v2), one plain deploy each
    const fixedV1 =
      cell.kind === 'deploy' &&
      cell.step === 'put-back' &&
      cell.fault === 'fail' &&
      cell.strategy === 'recreate'
    const v1Compose = composeFile(ctx, 'v1', fixedV1 ? await freePort() : undefined)
    const std = composeFile(ctx, 'release')
    const ownV1 =
      cell.kind === 'deploy' &&
      cell.step === 'put-back' &&
      cell.fault === 'fail' &&
      cell.strategy === 'blue-green'
        ? await ownImage(env, 'v1')
        : undefined
    if (ownV1) cleanups.push(() => removeRepository(ownV1.repo))
    const b1 = await plain(ctx, {
      version: 'v1',
      composeFiles: [v1Compose],
      images: [`web=${ownV1?.ref ?? env.images.v1}`]
    })
    if (b1.status !== 'deployed') throw new Error(`baseline v1: ${b1.status} ${b1.error ?? ''}`)
    const v1Id = currentRelease(path)!
    let previous = v1Id
    let v2Id: string | undefined
    if (cell.kind === 'rollback') {
      const b2 = await plain(ctx, { version: 'v2', composeFiles: [std], images: [`web=${env.images.v2}`] })
      if (b2.status !== 'deployed') throw new Error(`baseline v2: ${b2.status} ${b2.error ?? ''}`)
      v2Id = currentRelease(path)!
      previous = v2Id
    }

    // the faulted run
    let result: RunResult | undefined
    let attempted: string | undefined = cell.kind === 'rollback' ? v1Id : undefined
    let expectStatus: string | undefined
    let allowOutage = false
    let afterCheck: (() => Promise<void>) | undefined
    const triggers = triggersFor(cell)
    const baseJob: Partial<ChildJob> =
      cell.kind === 'rollback'
        ? { kind: 'rollback' }
        : {
            version: VERSION,
            composeFiles: [std],
            images: [
              `web=${cell.step === 'health' || cell.step === 'put-back' ? env.images.bad : env.images.v2}`
            ]
          }
    if (cell.fault === 'kill') {
      const r = await inChild(ctx, jobFor(ctx, baseJob), triggers)
      steps.push(...r.steps)
      result = r.result
      attempted ??= r.planned
      if (!r.killed) pending = true
      if (r.hung) problems.push(`the run did not end within ${env.runDeadlineSec}s (killed then)`)
    } else {
      const proxy = await startTcpCut(env.sshd.port)
      cleanups.push(() => proxy.stop())
      let inj: Injection | undefined
      let fired = false
      let hook: (e: StepEvent, planned?: string) => Promise<void> | void
      if (cell.fault === 'link') {
        hook = e => {
          steps.push(`${e.step} ${e.phase}`)
          const t = triggers.find(x => x.step === e.step && x.phase === e.phase)
          if (t && !fired) {
            fired = true
            if (t.delayMs) setTimeout(() => proxy.cut(), t.delayMs)
            else proxy.cut()
          }
        }
      } else {
        inj = await commandFault(ctx, { std, v1Compose, ownV1 })
        expectStatus = inj.expectStatus
        allowOutage = !!inj.allowOutage
        afterCheck = inj.afterCheck
        await inj.setup?.()
        hook = async (e, planned) => {
          steps.push(`${e.step} ${e.phase}`)
          await inj!.onStep?.(e, planned)
        }
      }
      const job = jobFor(ctx, inj ? inj.job : baseJob, proxy.port)
      const r = await inProcess(ctx, job, proxy, hook)
      await inj?.afterRun?.()
      result = r.result
      attempted ??= r.planned
      if (r.hung) problems.push(`the run did not return within ${env.runDeadlineSec}s: its link was cut then`)
      if (r.error) problems.push(`the run threw a non-user error: ${r.error.slice(0, 200)}`)
      if (cell.fault === 'link' ? !fired : !inj!.fired()) pending = true
    }
    if (pending)
      problems.push(
        cell.fault === 'fail'
          ? `pending: the fault was never injected (no onStep event for ${cell.step})`
          : `pending: onStep never reported ${describeTrigger(triggers)}${steps.length ? '' : ' (no step events at all)'}`
      )

    const report = await checkInvariants(path, {
      kind: cell.kind,
      serve: ctx.serve,
      previous,
      attempted,
      result,
      expectStatus,
      allowOutage,
      lockWaitSec: env.lockWaitSec
    })
    problems.push(...report.problems)
    outcome = report.outcome
    await afterCheck?.()

    // the next deploy works
    if (await waitLockFree(path, 5)) {
      const n = await plain(ctx, {
        version: 'v3',
        composeFiles: [std],
        images: [`web=${env.images.v3}`],
        lockTimeout: 10
      })
      const now = await serving(path, ctx.serve)
      if (n.status !== 'deployed') problems.push(`next deploy v3: ${n.status}: ${n.error ?? ''}`)
      else if (now.version !== 'v3' || releaseVersion(path, currentRelease(path)) !== 'v3')
        problems.push(
          `next deploy v3 deployed but ${now.version || 'nothing'} serves, current=${releaseVersion(path, currentRelease(path))}`
        )
      else outcome += ' · next ok'
    } else problems.push('next deploy not tried: the lock is held')
    if (result?.error && problems.length) outcome += ` · error: ${result.error.split('\n')[0].slice(0, 140)}`
  } catch (e) {
    problems.push(
      `cell broke: ${String((e as Error)?.stack ?? e)
        .split('\n')
        .slice(0, 3)
        .join(' ')}`
    )
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined)
    removeProjects(...projectsOf(path))
    unfreeze(dir)
    rmSync(dir, { recursive: true, force: true })
  }
  return {
    cell,
    ok: problems.length === 0,
    pending,
    outcome: outcome || 'no outcome',
    problems,
    steps,
    ms: Date.now() - t0,
    log: ctx.log.join('\n').slice(-4000)
  }
}

export function removeProjects(...projects: string[]): void {
  for (const project of projects) {
    const ids = execFileSync(
      'docker',
      ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`],
      {
        encoding: 'utf8'
      }
    )
      .split('\n')
      .filter(Boolean)
    if (ids.length) spawnSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' })
    spawnSync('docker', ['network', 'rm', `${project}_default`], { stdio: 'ignore' })
  }
}

/** Runs cells `size` at a time; outcomes in cell order. */
export async function runPool(env: MatrixEnv, list: Cell[], size: number): Promise<CellOutcome[]> {
  return mapLimit(list, size, cell => runCell(env, cell))
}

/** The matrix as a Markdown table: one row per step, one column per fault. */
export function matrixTable(outcomes: CellOutcome[]): string {
  const steps = [...new Set(outcomes.map(o => o.cell.step))]
  const faults = FAULTS.filter(f => outcomes.some(o => o.cell.fault === f))
  const cellText = (o?: CellOutcome): string => {
    if (!o) return '—'
    const mark = o.ok ? '✓' : o.pending ? '… pending' : '✗'
    return `${mark} ${o.outcome}${process.env.SHIPLINE_FAULT_TIMES ? ` (${(o.ms / 1000).toFixed(0)} s)` : ''}`.replace(
      /\|/g,
      '/'
    )
  }
  const head = `| step | ${faults.map(f => FAULT_NAMES[f]).join(' | ')} |`
  const sep = `|---|${faults.map(() => '---').join('|')}|`
  const rows = steps.map(
    s =>
      `| ${s} | ${faults.map(f => cellText(outcomes.find(o => o.cell.step === s && o.cell.fault === f))).join(' | ')} |`
  )
  return [head, sep, ...rows].join('\n')
}

/** The failing cells with their reasons, one block each. */
export function failures(outcomes: CellOutcome[]): string {
  return outcomes
    .filter(o => !o.ok)
    .map(
      o =>
        `${o.cell.strategy} ${cellName(o.cell)}${o.pending ? ' (pending)' : ''}: ${o.problems.join('; ')}\n    steps seen: ${o.steps.join(', ') || 'none'}`
    )
    .join('\n')
}

/**
 * The Compose runtime (`strategy: recreate`): `up -d` replaces a release's containers in the project of
 * the path; health is each container's healthcheck (or a stable run); a put-back is the previous release's
 * own files brought up again. Compose v2 (`docker compose`) and v1 (`docker-compose`) alike.
 */
import { UserError } from '../errors.js'
import { shellJoin, type RemoteResult } from '../ssh/remote.js'
import { composeArgv, ENV_FILE, type ComposeKind } from '../compose/layout.js'
import { HEALTH_SCRIPT, IMAGES_SCRIPT } from '../compose/scripts.js'
import { failureLine, type HostState, type ReleaseMeta, type ReleaseStore } from '../release/store.js'
import {
  withProbe,
  restartAndWait,
  type HealthOptions,
  type HealthResult,
  type RegistryLogin,
  type Runtime
} from './runtime.js'

const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

/** Reads a health wait's output: `state …` lines, then `result <word> …`, then the failing containers' logs. */
export function parseHealth(r: RemoteResult): HealthResult {
  const lines = r.stdout.split('\n')
  const state = [...lines].reverse().find(l => l.startsWith('state ')) ?? ''
  const i = lines.findIndex(l => l.startsWith('result '))
  const result = i >= 0 ? lines[i].split(' ')[1] : `exit ${r.code}`
  const logs =
    i >= 0
      ? lines
          .slice(i + 1)
          .join('\n')
          .trim()
      : r.stderr.trim()
  return { ok: r.code === 0 && result === 'healthy', result, state: state.slice(6).trim(), logs }
}

/** Waits for the containers of `services` in a Compose project to be healthy (HEALTH_SCRIPT), bounded. */
export async function composeHealth(
  exec: ReleaseStore['exec'],
  project: string,
  services: string[],
  timeoutSec: number,
  opts: HealthOptions = {}
): Promise<HealthResult> {
  const r = await exec(
    SH(
      HEALTH_SCRIPT,
      String(timeoutSec),
      String(opts.stableSec ?? 5),
      project,
      String(opts.tail ?? 30),
      ...services
    ),
    { timeoutMs: (timeoutSec + 60) * 1000 }
  )
  return parseHealth(r)
}

/** Images present stay; missing ones are pulled (login in a temporary config when a registry is given). */
export async function ensureImages(
  store: ReleaseStore,
  refs: string[],
  auth?: RegistryLogin
): Promise<string[]> {
  if (refs.length === 0) return []
  const cfg = `${store.runDir}/docker-config`
  // pulls of big images over a slow link may take long: 30 min, not the ordinary step limit
  const r = await store.exec(SH(IMAGES_SCRIPT, cfg, auth?.registry ?? '', auth?.username ?? '', ...refs), {
    stdin: auth?.password ?? '',
    timeoutMs: 1_800_000
  })
  const pulled = r.stdout
    .split('\n')
    .filter(l => l.startsWith('pull '))
    .map(l => l.slice(5))
  if (r.code !== 0) {
    const hint = auth
      ? 'Check registry-username/registry-password and that the image exists.'
      : "Set 'registry', 'registry-username' and 'registry-password' so the host can pull it."
    throw new UserError(`${store.label}: ${failureLine(r)}. ${hint}`, (r.stdout + r.stderr).trim())
  }
  return pulled
}

/** Throws when the host has no Compose; returns the flavour. */
function requireCompose(store: ReleaseStore, state: HostState): ComposeKind {
  if (state.compose === 'none')
    throw new UserError(
      `${store.label}: neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed on the host. Install the Compose plugin.`
    )
  return state.compose
}

export class ComposeRuntime implements Runtime {
  readonly name = 'compose' as const
  kind: ComposeKind = 'v1'

  constructor(
    readonly store: ReleaseStore,
    /** the Compose project (default: the path's) */
    readonly project = store.layout.project
  ) {}

  accept(state: HostState): void {
    this.kind = requireCompose(this.store, state)
  }

  prepareFiles(
    _meta: ReleaseMeta,
    files: { name: string; data: string }[]
  ): { name: string; data: string }[] {
    return files
  }

  ensureImages(refs: string[], auth?: RegistryLogin): Promise<string[]> {
    return ensureImages(this.store, refs, auth)
  }

  /** argv prefix of docker compose for a release's files in this runtime's project */
  composeFor(meta: Pick<ReleaseMeta, 'id' | 'files' | 'env'>): string[] {
    const dir = this.store.layout.release(meta.id)
    return composeArgv(this.kind, this.project, dir, meta.files, meta.env ? ENV_FILE : undefined)
  }

  upArgv(meta: ReleaseMeta, services?: string[]): string[] {
    const argv = [...this.composeFor(meta), 'up', '-d']
    if (services && services.length) argv.push('--no-deps', ...services)
    else argv.push('--remove-orphans')
    return argv
  }

  async start(meta: ReleaseMeta, services: string[] | undefined, recover: string): Promise<void> {
    const r = await this.store.step(this.upArgv(meta, services), recover)
    if (r.code !== 0) {
      const err = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-15).join('\n')
      throw new UserError(
        `${this.store.label}: ${this.kind === 'v2' ? 'docker compose' : 'docker-compose'} up of ${meta.version} failed: ${failureLine(r).replace(/\s+/g, ' ')}`,
        err
      )
    }
  }

  async waitHealthy(
    _meta: ReleaseMeta,
    services: string[],
    timeoutSec: number,
    opts?: HealthOptions
  ): Promise<HealthResult> {
    const h = await composeHealth(this.store.exec, this.project, services, timeoutSec, opts)
    return withProbe(this.store, h, opts?.probe?.port, opts)
  }

  cutOverArgv(): string[] {
    return []
  }

  async afterClose(): Promise<string[]> {
    return []
  }

  async restore(
    meta: ReleaseMeta,
    services: string[],
    timeoutSec: number,
    recover: string,
    opts?: HealthOptions
  ): Promise<HealthResult> {
    return restartAndWait(this, meta, services, timeoutSec, recover, opts)
  }

  restoreLines(meta: ReleaseMeta): string[] {
    return [shellJoin(this.upArgv(meta))]
  }

  oneOffArgv(meta: ReleaseMeta, service: string, argv: string[], name: string, withDeps: boolean): string[] {
    const deps = withDeps ? [] : ['--no-deps']
    return [...this.composeFor(meta), 'run', '--rm', '-T', '--name', name, ...deps, service, ...argv]
  }
}

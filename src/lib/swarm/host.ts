/**
 * `target: swarm`: a release deployed as a stack on a swarm manager, over the same SSH connection, lock,
 * release folders, ledger and current pointer as a Compose host. SwarmHost is a ComposeHost whose steps
 * that touch containers are swarm's:
 *
 * - upload: the release's override pins every image by digest (as for Compose) and injects
 *   `deploy.update_config: {order: start-first, failure_action: pause}` into each updated service, so a new
 *   task runs (and turns healthy) beside the old one before the old one stops, and a failing update stops;
 * - up: `docker stack deploy --with-registry-auth --prune -c <release files> <stack>` (registry login in a
 *   temporary config, password on stdin; the release's .env exported as data, since stack deploy ignores it);
 * - waitHealthy: polls `docker service inspect` (UpdateStatus) and `docker service ps` until every service
 *   runs as many tasks of its spec's image as desired (a task with a HEALTHCHECK is only `Running` once
 *   healthy), instead of `--detach=false`; paused/rolled-back updates and crash-looping tasks fail at once;
 * - recoverScript: a lost connection re-deploys the previous release's files.
 *
 * A rollback re-deploys the kept release's own files (any kept release), not `docker service rollback`
 * (which knows only the one previous spec of each service).
 */
import { parse, stringify } from 'yaml'
import { UserError } from '../errors.js'
import { shellJoin, type Remote } from '../ssh/remote.js'
import {
  ComposeHost,
  parseHealth,
  type ComposeHostOptions,
  type HealthResult,
  type ReleaseMeta
} from '../compose/host.js'
import { ENV_FILE, OVERRIDE_FILE } from '../compose/layout.js'
import { CONVERGE_SCRIPT, STACK_DEPLOY_SCRIPT } from './scripts.js'

const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

export const UPDATE_CONFIG = { order: 'start-first', failure_action: 'pause', monitor: '5s' }

/** A stack name docker accepts: letters, digits, _ . - (starting with a letter or digit), at most 63. */
export function validateStackName(raw: string): string {
  const s = raw.trim()
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(s))
    throw new UserError(
      `Input 'stack' must be a Docker stack name (letters, digits, _ . -; at most 63), got '${raw}'.`
    )
  return s
}

/** The compose file version an override needs for `order: start-first` (3.4+); keeps a newer one. */
export function stackVersion(version: string | undefined): string {
  const m = /^3\.(\d+)$/.exec(version ?? '')
  return m && Number(m[1]) >= 4 ? (version as string) : '3.8'
}

/** Rewrites an override (image pins) for swarm: start-first updates for the updated services. */
export function swarmOverride(override: string, updated: string[], version?: string): string {
  const doc = (parse(override) ?? {}) as {
    version?: string
    services?: Record<string, Record<string, unknown>>
  }
  const services = doc.services ?? {}
  for (const s of updated) {
    const svc = (services[s] ??= {})
    const deploy = (svc.deploy ?? {}) as Record<string, unknown>
    deploy.update_config = { ...UPDATE_CONFIG }
    svc.deploy = deploy
  }
  const out = { version: stackVersion(version ?? doc.version), services }
  return (
    '# written by shipline: pins each service to the digest of this release, start-first updates (target: swarm)\n' +
    stringify(out)
  )
}

export interface SwarmHostOptions extends ComposeHostOptions {
  /** stack name (default: the Compose project name derived from the path) */
  stack?: string
}

export class SwarmHost extends ComposeHost {
  readonly stack: string
  protected override requiresCompose = false
  private auth?: { registry: string; username: string; password: string }

  constructor(remote: Remote, opts: SwarmHostOptions) {
    super(remote, opts)
    this.stack = opts.stack ? validateStackName(opts.stack) : this.layout.project
  }

  override async upload(
    meta: ReleaseMeta,
    files: { name: string; data: string }[],
    env: string | undefined,
    copyEnvFrom?: string
  ): Promise<void> {
    const version = (parse(files[0]?.data ?? '') as { version?: unknown } | null)?.version
    const out = files.map(f =>
      f.name === OVERRIDE_FILE
        ? { name: f.name, data: swarmOverride(f.data, meta.updated, version ? String(version) : undefined) }
        : f
    )
    return super.upload(meta, out, env, copyEnvFrom)
  }

  /** Remembers the registry login for the stack deploy (--with-registry-auth), then pulls what is missing. */
  override async ensureImages(
    refs: string[],
    auth?: { registry: string; username: string; password: string }
  ): Promise<string[]> {
    this.auth = auth
    return super.ensureImages(refs, auth)
  }

  /** argv of the stack deploy of a release (the registry password goes on stdin). */
  stackArgv(meta: ReleaseMeta, withAuth = true): string[] {
    const dir = this.layout.release(meta.id)
    const a = withAuth ? this.auth : undefined
    return SH(
      STACK_DEPLOY_SCRIPT,
      `${this.runDir}/docker-config-stack`,
      a?.registry ?? '',
      a?.username ?? '',
      this.stack,
      meta.env ? `${dir}/${ENV_FILE}` : '',
      ...meta.files.flatMap(f => ['-c', `${dir}/${f}`])
    )
  }

  override async up(
    meta: ReleaseMeta,
    _services: string[] | undefined,
    recoverScript: string
  ): Promise<void> {
    this.execs++
    // the recovery script first (as the Compose path does), then the deploy
    await this.remote.exec(
      [
        'sh',
        '-c',
        'mkdir -p "$1" && cat > "$1/recover.sh.tmp" && if [ -s "$1/recover.sh.tmp" ]; then mv -f "$1/recover.sh.tmp" "$1/recover.sh"; else rm -f "$1/recover.sh.tmp"; fi',
        'sh',
        this.runDir
      ],
      {
        stdin: recoverScript
      }
    )
    this.execs++
    const r = await this.remote.exec(['flock', `${this.runDir}/step`, ...this.stackArgv(meta)], {
      stdin: this.auth?.password ?? '',
      timeoutMs: 600_000
    })
    if (r.code !== 0) {
      const text = (r.stdout + '\n' + r.stderr).trim()
      const msg = /ERR (.*)/.exec(text)?.[1] ?? text.split('\n').pop() ?? `exit ${r.code}`
      const hint = /not a swarm manager/.test(msg)
        ? " Run 'docker swarm init' there (or name a manager in 'hosts'), or use 'target: compose'."
        : ''
      throw new UserError(`${this.label}: docker stack deploy of ${meta.id} failed: ${msg}.${hint}`, text)
    }
  }

  override async waitHealthy(
    services: string[],
    timeoutSec: number,
    opts: { stableSec?: number; tail?: number } = {}
  ): Promise<HealthResult> {
    this.execs++
    const r = await this.remote.exec(
      SH(
        CONVERGE_SCRIPT,
        String(timeoutSec),
        String(opts.stableSec ?? 2),
        this.stack,
        String(opts.tail ?? 30),
        ...services
      ),
      { timeoutMs: (timeoutSec + 60) * 1000 }
    )
    return parseHealth(r)
  }

  override recoverScript(meta: ReleaseMeta, from: string | undefined, attempted: string): string {
    const lines = super.recoverScript(meta, from, attempted).split('\n')
    // line 1 is the compose up of the base class: the stack deploy of that release instead (no registry
    // login: its images are on the nodes already)
    lines[1] = `${shellJoin(this.stackArgv(meta, false))} </dev/null`
    return lines.join('\n')
  }
}

/**
 * The swarm runtime (`target: swarm`): a release is a stack on a swarm manager (see src/lib/swarm/host.ts
 * for the override it writes and the scripts it runs). Start is `docker stack deploy` of the release's own
 * files (start-first updates), health is convergence of every service on its spec, a put-back re-deploys
 * the kept release's files.
 */
import { parse } from 'yaml'
import { UserError } from '../errors.js'
import { shellJoin } from '../ssh/remote.js'
import { ENV_FILE, OVERRIDE_FILE } from '../compose/layout.js'
import { CONVERGE_SCRIPT, STACK_DEPLOY_SCRIPT } from '../swarm/scripts.js'
import { swarmOverride, validateStackName } from '../swarm/host.js'
import type { HostState, ReleaseMeta, ReleaseStore } from '../release/store.js'
import { ensureImages, parseHealth } from './compose.js'
import {
  restartAndWait,
  type HealthOptions,
  type HealthResult,
  type RegistryLogin,
  type Runtime
} from './runtime.js'

const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

export class SwarmRuntime implements Runtime {
  readonly name = 'swarm' as const
  readonly stack: string
  private auth?: RegistryLogin

  constructor(
    readonly store: ReleaseStore,
    stack?: string
  ) {
    this.stack = stack ? validateStackName(stack) : store.layout.project
  }

  accept(_state: HostState): void {
    /* no Compose needed: the stack deploy checks for a manager itself */
  }

  prepareFiles(meta: ReleaseMeta, files: { name: string; data: string }[]): { name: string; data: string }[] {
    const version = (parse(files[0]?.data ?? '') as { version?: unknown } | null)?.version
    return files.map(f =>
      f.name === OVERRIDE_FILE
        ? { name: f.name, data: swarmOverride(f.data, meta.updated, version ? String(version) : undefined) }
        : f
    )
  }

  /** Remembers the registry login for the stack deploy (--with-registry-auth), then pulls what is missing. */
  ensureImages(refs: string[], auth?: RegistryLogin): Promise<string[]> {
    this.auth = auth
    return ensureImages(this.store, refs, auth)
  }

  /** argv of the stack deploy of a release (the registry password goes on stdin). */
  stackArgv(meta: ReleaseMeta, withAuth = true): string[] {
    const dir = this.store.layout.release(meta.id)
    const a = withAuth ? this.auth : undefined
    return SH(
      STACK_DEPLOY_SCRIPT,
      `${this.store.runDir}/docker-config-stack`,
      a?.registry ?? '',
      a?.username ?? '',
      this.stack,
      meta.env ? `${dir}/${ENV_FILE}` : '',
      ...meta.files.flatMap(f => ['-c', `${dir}/${f}`])
    )
  }

  async start(meta: ReleaseMeta, _services: string[] | undefined, recover: string): Promise<void> {
    // the recovery is armed first (stdin of the step is the recovery script), then the deploy runs
    await this.store.step(['true'], recover)
    const r = await this.store.exec(['flock', `${this.store.runDir}/step`, ...this.stackArgv(meta)], {
      stdin: this.auth?.password ?? ''
    })
    for (const l of r.stdout.split('\n'))
      if (l.startsWith('skip '))
        this.store.log.warning(`${this.store.label}: .env of ${meta.id}: ${l.slice(5)}`)
    if (r.code !== 0) {
      const text = (r.stdout + '\n' + r.stderr).trim()
      const msg = /ERR (.*)/.exec(text)?.[1] ?? text.split('\n').pop() ?? `exit ${r.code}`
      const hint = /not a swarm manager/.test(msg)
        ? " Run 'docker swarm init' there (or name a manager in 'hosts'), or use 'target: compose'."
        : ''
      throw new UserError(
        `${this.store.label}: docker stack deploy of ${meta.id} failed: ${msg}.${hint}`,
        text
      )
    }
  }

  async waitHealthy(
    _meta: ReleaseMeta,
    services: string[],
    timeoutSec: number,
    opts: HealthOptions = {}
  ): Promise<HealthResult> {
    const r = await this.store.exec(
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

  /** No registry login: the kept release's images are on the nodes already. */
  restoreLines(meta: ReleaseMeta): string[] {
    return [`${shellJoin(this.stackArgv(meta, false))} </dev/null`]
  }

  oneOffArgv(): string[] {
    throw new UserError(
      "Input 'release-command' is not supported with 'target: swarm' yet: run it as a one-off service of its own, or deploy with 'target: compose'."
    )
  }
}

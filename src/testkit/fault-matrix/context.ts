/**
 * One fault-matrix cell's context (its project path, temp dir, nginx, log) and what every part of a cell
 * uses with it: the cell's log lines, the deploy job for its host, its compose files and a plain run.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runJob, type ChildJob } from '../deploy-child.js'
import type { Nginx } from '../nginx.js'
import type { Cell, Strategy } from './cells.js'
import type { Serve } from './host.js'
import type { RunResult } from './invariants.js'
import type { MatrixEnv } from './setup.js'

/** the version a cell's faulted deploy makes */
export const VERSION = 'v2'

export interface CellCtx {
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
export function note(ctx: CellCtx, m: string): void {
  ctx.log.push(`+${((Date.now() - ctx.t0) / 1000).toFixed(1)}s ${m}`)
}

export function jobFor(ctx: CellCtx, over: Partial<ChildJob>, sshPort?: number): ChildJob {
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

export function composeFile(ctx: CellCtx, name: string, fixedPort?: number): string {
  const f = join(ctx.dir, `${name}.yml`)
  writeFileSync(f, composeText(ctx.cell.strategy, fixedPort))
  return f
}

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

/** A plain deploy/rollback in this process, straight to sshd (baselines and the next deploy). */
export async function plain(
  ctx: CellCtx,
  over: Partial<ChildJob>
): Promise<RunResult & { releaseId?: string }> {
  const r = (await runJob(jobFor(ctx, over), {
    log: { info: m => void note(ctx, m), warning: m => void note(ctx, `WARN ${m}`) },
    onStep: e => note(ctx, `step ${e.step} ${e.phase}`)
  })) as RunResult & { releaseId?: string }
  return r
}

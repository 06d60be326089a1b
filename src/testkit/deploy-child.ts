/**
 * A deploy or rollback in a process of its own, for the fault matrix's "runner SIGKILLed" cells: the parent
 * compiles this file with esbuild (fault-matrix.ts compileDeployChild), starts it with SHIPLINE_DEPLOY_CHILD=1 and writes
 * one JSON job on its stdin (the SSH private key travels there, never on argv or in the environment). The
 * child runs deploy()/rollback() from src/lib and prints, on stdout:
 *
 *   PLAN <release-id>            once the release is planned (onPlanned)
 *   STEP <step> <phase> <rel>    for every onStep event, the moment it happens (stdout to a pipe is
 *                                synchronous on Linux, so the parent sees the line before the step runs)
 *   RESULT <json>                the result, when it gets that far
 *
 * It waits for nothing: the parent SIGKILLs it when it sees the line it wants. The library's own log goes
 * to stderr. No post step runs (there is none: a SIGKILLed runner runs nothing more).
 *
 * jobOptions() turns the same job into DeployOptions/RollbackOptions for in-process use, so a cell builds
 * its options one way whether it runs here or in the test's process.
 */
import { deploy, rollback } from '../lib/deploy/index.js'
import type { DeployOptions, RollbackOptions, StepEvent } from '../lib/deploy/types.js'
import { isUserError } from '../lib/errors.js'
import { connectSsh } from '../lib/ssh/client.js'
import { parseReleaseCommand } from '../lib/deploy/commands.js'
import * as strategyHost from '../lib/strategy/host.js'

export interface ChildJob {
  kind: 'deploy' | 'rollback'
  ssh: { host: string; port: number; user: string; privateKey: string; knownHosts: string }
  path: string
  healthTimeout: number
  lockTimeout: number
  stableSeconds: number
  /** deploy: compose files on this machine, `service=ref` lines (digests pinned: no registry client needed) */
  composeFiles?: string[]
  images?: string[]
  version?: string
  autoRollback?: boolean
  keepReleases?: number
  /** deploy: `release-command` input text (service=command), run with a 60 s limit */
  releaseCommand?: string
  /** rollback: target version or release id */
  to?: string
  blueGreen?: {
    ports: Record<string, [number, number]>
    includeDir: string
    testCommand: string
    reloadCommand: string
    drainSeconds: number
    minFreeMiB: number
  }
}

export interface JobHooks {
  log: { info(m: string): void; warning(m: string): void }
  onStep?(e: StepEvent): void | Promise<void>
  onPlanned?(p: { releaseId: string }): void | Promise<void>
}

/**
 * The blue-green choice as the library takes it: `runtime: runtimeFactory(…)` (the reworked store/runtime
 * split) or, before it, `makeHost: hostFactory(…)`; whichever src/lib/strategy/host.ts exports.
 */
function strategyOption(job: ChildJob): Record<string, unknown> {
  if (!job.blueGreen) return {}
  const choice = {
    strategy: 'blue-green' as const,
    target: 'compose' as const,
    blueGreen: { ...job.blueGreen, ports: new Map(Object.entries(job.blueGreen.ports)) }
  }
  const m = strategyHost as unknown as Record<string, ((c: typeof choice) => unknown) | undefined>
  if (m.runtimeFactory) return { runtime: m.runtimeFactory(choice) }
  if (m.hostFactory) return { makeHost: m.hostFactory(choice) }
  throw new Error('src/lib/strategy/host.ts exports neither runtimeFactory nor hostFactory')
}

/** The library options for a job (connect through job.ssh; blue-green when job.blueGreen is set). */
export function jobOptions(job: ChildJob, hooks: JobHooks): DeployOptions | RollbackOptions {
  const { ssh } = job
  const common = {
    hosts: [`${ssh.user}@${ssh.host}:${ssh.port}`],
    connect: () =>
      connectSsh({
        target: { host: ssh.host, port: ssh.port, user: ssh.user },
        privateKey: ssh.privateKey,
        knownHosts: ssh.knownHosts
      }),
    path: job.path,
    healthTimeout: job.healthTimeout,
    lockTimeout: job.lockTimeout,
    stableSeconds: job.stableSeconds,
    log: hooks.log,
    onStep: hooks.onStep,
    ...strategyOption(job)
  }
  if (job.kind === 'rollback') return { ...common, to: job.to, onPlanned: hooks.onPlanned } as RollbackOptions
  return {
    ...common,
    composeFiles: job.composeFiles ?? [],
    images: job.images ?? [],
    version: job.version ?? '',
    autoRollback: job.autoRollback ?? true,
    keepReleases: job.keepReleases ?? 5,
    commands: job.releaseCommand ? { release: parseReleaseCommand(job.releaseCommand, 60) } : undefined,
    onPlanned: hooks.onPlanned
  } as DeployOptions
}

export async function runJob(
  job: ChildJob,
  hooks: JobHooks
): Promise<{ status: string; error?: string; hosts: { status: string; message?: string }[] }> {
  const o = jobOptions(job, hooks)
  return job.kind === 'rollback' ? rollback(o as RollbackOptions) : deploy(o as DeployOptions)
}

async function main(): Promise<void> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  const job = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChildJob
  const say = (line: string): void => void process.stdout.write(line + '\n')
  const result = await runJob(job, {
    log: {
      info: m => void process.stderr.write(`${m}\n`),
      warning: m => void process.stderr.write(`WARN ${m}\n`)
    },
    onPlanned: p => say(`PLAN ${p.releaseId}`),
    onStep: e => say(`STEP ${e.step} ${e.phase} ${e.release ?? '-'}`)
  }).catch(e => {
    // a refusal (held lock, bad input) is thrown as a UserError: report it as the action would, failed
    if (!isUserError(e)) throw e
    return { status: 'failed', error: e.message, threw: true, hosts: [] }
  })
  say(`RESULT ${JSON.stringify(result)}`)
}

if (process.env.SHIPLINE_DEPLOY_CHILD === '1') {
  main().then(
    () => process.exit(0),
    e => {
      process.stdout.write(`ERROR ${JSON.stringify(String((e as Error)?.stack ?? e))}\n`)
      process.exit(1)
    }
  )
}

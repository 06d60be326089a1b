/**
 * Running fault-matrix cells: one cell end to end (baseline, the faulted run in this process or in a
 * child, the check, the next deploy), a pool of cells, and the matrix as a table.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { StepEvent } from '../../lib/deploy/types.js'
import { isUserError } from '../../lib/errors.js'
import { mapLimit } from '../../lib/pool.js'
import { upstreamName } from '../../lib/strategy/blue-green.js'
import { runJob, type ChildJob } from '../deploy-child.js'
import { removeRepository } from '../images.js'
import { freePort, sleep } from '../net.js'
import { startNginx } from '../nginx.js'
import { startTcpCut, type TcpCut } from '../tcp-cut.js'
import {
  cellName,
  describeTrigger,
  FAULT_NAMES,
  FAULTS,
  triggersFor,
  type Cell,
  type Trigger
} from './cells.js'
import { composeFile, jobFor, note, plain, VERSION, type CellCtx } from './context.js'
import { commandFault, ownImage, type Injection } from './faults.js'
import { currentRelease, projectsOf, releaseVersion, serving, waitLockFree } from './host.js'
import { checkInvariants, type RunResult } from './invariants.js'
import { unfreeze, type MatrixEnv } from './setup.js'

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
            ],
            ...(cell.step === 'release-command'
              ? { releaseCommand: `web=sh -c 'echo migrating; sleep 2'` }
              : {})
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

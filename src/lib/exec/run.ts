/**
 * exec over the hosts of a deploy: on each host (`maxParallel` at once) connect, read the release state
 * (without the deploy lock unless `lock` is set: then it waits for the lock like a deploy does and runs
 * under it), refuse before running anything when the host cannot run the command as asked, mask the
 * current release's .env values, run the command bounded by `timeoutSec` (the SSH transport kills the
 * remote process group; in a service container the processes of the run are stopped there too), and
 * collect its exit code and capped, redacted output. A host that fails (unreachable, refused, non-zero,
 * timed out) is that host's result; the others still run.
 */
import { randomBytes } from 'node:crypto'
import { UserError, errorMessage } from '../errors.js'
import { layout, ENV_FILE, type Layout } from '../compose/layout.js'
import { validateProjectPath } from '../compose/validate.js'
import { group, type Logger } from '../log.js'
import { mapLimit } from '../pool.js'
import { liveRelease, ReleaseStore } from '../release/store.js'
import { RemoteTimeoutError } from '../ssh/client.js'
import type { Remote } from '../ssh/remote.js'
import { capOutput, HOST_CAP_BYTES, LineSplitter } from './output.js'
import {
  checkCommand,
  checkService,
  envSecrets,
  killArgv,
  parseRead,
  planHost,
  runArgv,
  stateArgv,
  type HostPlan
} from './plan.js'

export interface ExecOptions {
  /** host labels (as formatTarget writes them); connect() turns one into a Remote */
  hosts: string[]
  connect(host: string): Promise<Remote>
  /** the project path on the hosts */
  path: string
  /** Compose project name (default: derived from path, as deploys do) */
  project?: string
  /** the service whose container of the current release runs the command; undefined: on the host */
  service?: string
  /** shell text, run with `sh -c` */
  command: string
  timeoutSec: number
  /** hosts at once */
  maxParallel: number
  /** bytes of each stream kept per host (first and last half) */
  outputLimit: number
  /** take the deploy lock (waiting up to lockTimeoutSec) and run under it; else only warn when it is held */
  lock?: boolean
  lockTimeoutSec?: number
  /** who holds the lock, for another run waiting on it */
  owner?: string
  log: Logger
  /** streams every output line into the log (default true) */
  streamLog?: boolean
  /** called with each value to mask (the current release's .env values) before the command runs */
  addSecret?(value: string): void
  /** applied to every text kept or logged */
  redact?(text: string): string
  /** what the host sends of each stream at most (default HOST_CAP_BYTES) */
  hostCapBytes?: number
}

export interface HostExecResult {
  host: string
  ok: boolean
  /** the command's exit code; null when it has none (timed out, refused, unreachable) */
  exitCode: number | null
  timedOut: boolean
  /** one line when the host failed without an exit code of its own */
  error?: string
  stdout: string
  stderr: string
  /** some output was left out (output-limit, or the host's cap) */
  truncated: boolean
  durationMs: number
  service?: string
  releaseId?: string
  version?: string
}

export interface ExecResult {
  hosts: HostExecResult[]
  /** labels of the hosts that failed, in host order */
  failed: string[]
}

/** The checks made before anything connects (the action layer makes them too, naming its inputs). */
export function checkExecOptions(opts: ExecOptions): { path: string; service?: string; command: string } {
  const path = validateProjectPath(opts.path)
  const command = checkCommand(opts.command)
  const service = opts.service === undefined ? undefined : checkService(opts.service)
  if (opts.hosts.length === 0)
    throw new UserError(`Input 'hosts' is empty. Name at least one host, e.g. 'hosts: deploy@203.0.113.10'.`)
  if (!(opts.timeoutSec >= 1)) throw new UserError(`Input 'timeout' must be at least 1 second.`)
  if (!(opts.outputLimit >= 1)) throw new UserError(`Input 'output-limit' must be at least 1 byte.`)
  return { path, service, command }
}

/** One line for a failed host: its exit code, its time-out or its error. */
export function failureReason(h: HostExecResult): string {
  if (h.timedOut) return h.error ?? 'timed out'
  if (h.error) return h.error
  return `exit ${h.exitCode}`
}

export async function execOnHosts(opts: ExecOptions): Promise<ExecResult> {
  const checked = checkExecOptions(opts)
  const hosts = await mapLimit(opts.hosts, opts.maxParallel, host => runHost(opts, checked, host))
  return { hosts, failed: hosts.filter(h => !h.ok).map(h => h.host) }
}

async function runHost(
  opts: ExecOptions,
  checked: { path: string; service?: string; command: string },
  label: string
): Promise<HostExecResult> {
  const t0 = Date.now()
  const { path, service, command } = checked
  const redact = opts.redact ?? ((s: string) => s)
  const res: HostExecResult = {
    host: label,
    ok: false,
    exitCode: null,
    timedOut: false,
    stdout: '',
    stderr: '',
    truncated: false,
    durationMs: 0,
    ...(service ? { service } : {})
  }
  const lay = layout(path, opts.project)
  let remote: Remote | undefined
  let store: ReleaseStore | undefined
  try {
    try {
      remote = await opts.connect(label)
    } catch (e) {
      throw new UserError(`cannot connect: ${errorMessage(e).split('\n')[0]}`)
    }
    const r = await remote.exec(stateArgv(path, !!service), { timeoutMs: 60_000 })
    const read = parseRead(label, r.stdout || r.stderr, r.code)
    let plan = planHost(label, lay, read, service)
    if (opts.lock) {
      store = new ReleaseStore(remote, { path, project: opts.project, log: opts.log })
      const state = await store.lock(opts.lockTimeoutSec ?? 300, opts.owner ?? 'shipline exec')
      // the state under the lock: a deploy waited for may have changed the release
      plan = planHost(
        label,
        lay,
        {
          pathExists: true,
          compose: state.compose,
          current: state.current ?? '',
          release: liveRelease(state)
        },
        service
      )
    } else if (read.busy) {
      opts.log.warning(
        `${label}: a deploy holds the lock on ${path} (${read.busy}); running anyway ('lock: true' waits for it)`
      )
    }
    res.releaseId = plan.release?.id
    res.version = plan.release?.version
    if (plan.release?.env) await maskEnv(opts, remote, lay, plan, label)
    await runCommand(opts, remote, lay, plan, command, label, res)
  } catch (e) {
    res.error = redact(`${errorMessage(e).split('\n')[0]}`.replace(`${label}: `, ''))
  } finally {
    if (store)
      await store.finish().catch(e => opts.log.warning(`${label}: letting the lock go: ${errorMessage(e)}`))
    await remote?.close().catch(() => undefined)
  }
  res.ok = !res.error && !res.timedOut && res.exitCode === 0
  res.durationMs = Date.now() - t0
  return res
}

/** The release's .env values are the deploy's secrets: masked before the command can print them. */
async function maskEnv(
  opts: ExecOptions,
  remote: Remote,
  lay: Layout,
  plan: HostPlan,
  label: string
): Promise<void> {
  if (!opts.addSecret) return
  try {
    const text = (await remote.readFile(`${lay.release(plan.release!.id)}/${ENV_FILE}`)).toString('utf8')
    for (const v of envSecrets(text)) opts.addSecret(v)
  } catch (e) {
    opts.log.warning(
      `${label}: could not read the release's .env to mask its values (${errorMessage(e)}); its values are not masked in the output`
    )
  }
}

async function runCommand(
  opts: ExecOptions,
  remote: Remote,
  lay: Layout,
  plan: HostPlan,
  command: string,
  label: string,
  res: HostExecResult
): Promise<void> {
  const redact = opts.redact ?? ((s: string) => s)
  const mark = `@@shipline-exec-${randomBytes(6).toString('hex')}`
  const token = randomBytes(8).toString('hex')
  const hostCap = opts.hostCapBytes ?? HOST_CAP_BYTES
  const argv = runArgv({ lay, plan, command, mark, hostCap, token })
  const where = plan.service
    ? `in service ${plan.service} of release ${plan.release!.version} (${plan.release!.id})`
    : `on the host in ${plan.cwd}`
  opts.log.info(`${label}: running ${where}`)
  const stream = opts.streamLog !== false
  const outLines = new LineSplitter(l => opts.log.info(redact(`[${label}] ${l}`)))
  const errLines = new LineSplitter(l => {
    if (!l.startsWith(mark)) opts.log.info(redact(`[${label} stderr] ${l}`))
  })
  let code: number | null = null
  let stdout = ''
  let stderr = ''
  try {
    const r = await remote.exec(argv, {
      timeoutMs: opts.timeoutSec * 1000,
      ...(stream ? { onStdout: c => outLines.write(c), onStderr: c => errLines.write(c) } : {})
    })
    ;({ code, stdout, stderr } = r)
  } catch (e) {
    if (!(e instanceof RemoteTimeoutError)) throw e
    res.timedOut = true
    res.error = `timed out after ${opts.timeoutSec}s: the command was stopped`
    stdout = e.stdout
    stderr = e.stderr
  } finally {
    outLines.end()
    errLines.end()
  }
  if (res.timedOut && plan.service) await stopInContainer(opts, remote, lay, plan, token, label)
  const own = new RegExp(`^${mark} (.*)$`, 'm').exec(stderr)
  if (own) {
    res.error = own[1]
    stderr = stderr.replace(new RegExp(`\\n?^${mark} .*$\\n?`, 'gm'), '')
  } else if (!res.timedOut) res.exitCode = code
  const out = capOutput(redact(stdout), opts.outputLimit, hostCap)
  const err = capOutput(redact(stderr), opts.outputLimit, hostCap)
  res.stdout = out.text
  res.stderr = err.text
  res.truncated = out.truncated || err.truncated
  if (res.exitCode !== null && res.exitCode !== 0) opts.log.info(`${label}: exit ${res.exitCode}`)
}

/** `docker compose exec` leaves its process running in the container when its client is killed: stop it. */
async function stopInContainer(
  opts: ExecOptions,
  remote: Remote,
  lay: Layout,
  plan: HostPlan,
  token: string,
  label: string
): Promise<void> {
  await group(opts.log, `${label}: stopping the command inside the container`, async () => {
    try {
      const k = await remote.exec(killArgv(lay, plan, token), { timeoutMs: 30_000 })
      const n = /stopped (\d+)/.exec(k.stdout)?.[1]
      if (k.code === 0)
        opts.log.info(`${label}: ${n ?? 0} signal(s) sent to the command's processes in ${plan.service}`)
      else
        opts.log.warning(
          `${label}: could not stop the command inside ${plan.service} (exit ${k.code}): ${(k.stderr || k.stdout).trim().split('\n').pop() ?? ''}`
        )
    } catch (e) {
      opts.log.warning(`${label}: could not stop the command inside ${plan.service}: ${errorMessage(e)}`)
    }
  })
}

/** The `results` output: one object per host, kebab-case keys as the outputs' other JSON. */
export function resultsJson(result: ExecResult): string {
  return JSON.stringify(
    result.hosts.map(h => ({
      host: h.host,
      'exit-code': h.exitCode,
      ok: h.ok,
      'timed-out': h.timedOut,
      error: h.error ?? null,
      stdout: h.stdout,
      stderr: h.stderr,
      truncated: h.truncated,
      'duration-ms': h.durationMs,
      'release-id': h.releaseId ?? null,
      version: h.version ?? null
    }))
  )
}

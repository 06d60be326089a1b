/**
 * The pure half of exec: the checks of its inputs made before anything connects, what a host's state read
 * says, the refusals made on a host before anything runs there, and the argv that runs the command: on the
 * host (`env SHIPLINE_…=… sh -c COMMAND` in the current release's folder, else in `path`) or in the
 * current release's service container (`docker compose … exec -T -e SHIPLINE_…=… SERVICE sh -c COMMAND`,
 * or `docker-compose` v1), both through EXEC_SCRIPT. The user's text is only ever the one argument of
 * `sh -c`; every element is quoted by the SSH transport.
 */
import { UserError } from '../errors.js'
import { composeArgv, ENV_FILE, type ComposeKind, type Layout } from '../compose/layout.js'
import { RELEASE_ID_RE, validateServiceName } from '../compose/validate.js'
import type { ReleaseMeta } from '../release/store.js'
import { EXEC_SCRIPT, KILL_SCRIPT, STATE_SCRIPT } from './scripts.js'

const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

/** A command longer than this is refused (it travels as one argument: the host's ARG_MAX is near). */
export const MAX_COMMAND_BYTES = 64 * 1024

/** `command`: required, kept as written (a multi-line script is fine), at most MAX_COMMAND_BYTES. */
export function checkCommand(raw: string): string {
  const text = raw.trim()
  if (!text)
    throw new UserError(
      "Input 'command' is required: the shell command to run, e.g. 'command: bin/rails db:migrate:status'."
    )
  if (Buffer.byteLength(text) > MAX_COMMAND_BYTES)
    throw new UserError(
      `Input 'command' is ${Buffer.byteLength(text)} bytes, more than ${MAX_COMMAND_BYTES}: put the script in the image (or on the host) and run that.`
    )
  return text
}

/** `service`: empty = on the host; else a Compose service name. */
export function checkService(raw: string): string | undefined {
  const s = raw.trim()
  return s ? validateServiceName(s, 'service') : undefined
}

/** What STATE_SCRIPT read of a host. */
export interface HostRead {
  pathExists: boolean
  compose?: ComposeKind | 'none'
  /** the release `current` names ('' when none) */
  current: string
  /** its release.json, when the folder is there and the file parses */
  release?: ReleaseMeta
  /** the lock owner while a deploy holds the lock */
  busy?: string
}

export function stateArgv(path: string, wantCompose: boolean): string[] {
  return SH(STATE_SCRIPT, path, wantCompose ? '1' : '0')
}

/** Parses STATE_SCRIPT's output; `ERR …` lines become the host's refusal. */
export function parseRead(label: string, out: string, code: number): HostRead {
  const err = /^ERR (.*)$/m.exec(out)?.[1]
  if (err) throw new UserError(`${label}: ${err}`)
  if (code !== 0 || !/^END$/m.test(out))
    throw new UserError(
      `${label}: reading the release state failed (exit ${code}): ${out.trim().split('\n').pop() || 'no output'}`
    )
  const read: HostRead = { pathExists: false, current: '' }
  for (const line of out.split('\n')) {
    const sp = line.indexOf(' ')
    const key = sp < 0 ? line : line.slice(0, sp)
    const rest = sp < 0 ? '' : line.slice(sp + 1)
    if (key === 'path') read.pathExists = rest === 'ok'
    else if (key === 'compose') read.compose = rest as HostRead['compose']
    else if (key === 'current') read.current = rest.trim()
    else if (key === 'busy') read.busy = rest.trim() || 'another run'
    else if (key === 'release') {
      try {
        const meta = JSON.parse(rest) as ReleaseMeta
        if (meta && typeof meta.id === 'string' && typeof meta.version === 'string') read.release = meta
      } catch {
        /* a damaged release.json: treated as missing */
      }
    }
  }
  if (read.release && read.release.id !== read.current) read.release = undefined
  return read
}

/** How the command runs on one host, decided before anything runs there. */
export interface HostPlan {
  service?: string
  release?: ReleaseMeta
  compose?: ComposeKind
  /** host mode: the folder the command runs in */
  cwd?: string
  env: Record<string, string>
}

/**
 * The refusals made on a host before anything runs, and the plan: in a service container the host needs
 * a current release (its folder and release.json) that defines the service, and Compose; on the host, the
 * project path must exist (the command runs in the current release's folder, else in `path`).
 */
export function planHost(
  label: string,
  lay: Layout,
  read: Pick<HostRead, 'pathExists' | 'compose' | 'current' | 'release'>,
  service: string | undefined
): HostPlan {
  if (!read.pathExists)
    throw new UserError(
      `${label}: ${lay.path} does not exist on the host. Check 'path' (the project directory deploys use).`
    )
  const current = read.current && RELEASE_ID_RE.test(read.current) ? read.current : ''
  const release = current && read.release?.id === current ? read.release : undefined
  if (service) {
    if (!read.current)
      throw new UserError(
        `${label}: no current release under ${lay.path}: deploy one first (deploy-ssh), or leave 'service' empty to run the command on the host.`
      )
    if (!release)
      throw new UserError(
        `${label}: ${lay.current} names release ${read.current}, whose folder or release.json is missing or damaged: deploy again, or roll back to a kept release.`
      )
    if (!release.services.includes(service))
      throw new UserError(
        `${label}: release ${release.version} (${release.id}) does not define service '${service}'. Known: ${release.services.join(', ') || 'none'}. Check 'service'.`
      )
    if (!read.compose || read.compose === 'none')
      throw new UserError(
        `${label}: neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed on the host. Install the Compose plugin.`
      )
  }
  const env: Record<string, string> = { SHIPLINE_HOST: label, SHIPLINE_PATH: lay.path }
  if (release) {
    env.SHIPLINE_RELEASE_ID = release.id
    env.SHIPLINE_VERSION = release.version
  }
  return service
    ? { service, release, compose: read.compose as ComposeKind, env }
    : { release, cwd: release ? lay.release(release.id) : lay.path, env }
}

export interface RunArgvOptions {
  lay: Layout
  plan: HostPlan
  command: string
  /** EXEC_SCRIPT's marker of its own failures */
  mark: string
  /** bytes of each stream the host sends at most */
  hostCap: number
  /** service mode: the token every process of this run carries in its environment (for the kill) */
  token: string
}

/** The compose argv prefix for the plan's release (its files, its .env), in the path's project. */
export function releaseCompose(lay: Layout, plan: HostPlan): string[] {
  const r = plan.release!
  return composeArgv(plan.compose!, lay.project, lay.release(r.id), r.files, r.env ? ENV_FILE : undefined)
}

/** The one argv that runs the command on the host or in the service container. */
export function runArgv(o: RunArgvOptions): string[] {
  const { lay, plan } = o
  if (plan.service) {
    const env = { ...plan.env, SHIPLINE_EXEC_TOKEN: o.token }
    const argv = [
      // docker-compose v1 is Python: unbuffered, so output streams (and is not lost when a time-out kills it)
      ...(plan.compose === 'v1' ? ['env', 'PYTHONUNBUFFERED=1'] : []),
      ...releaseCompose(lay, plan),
      'exec',
      '-T',
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      plan.service,
      'sh',
      '-c',
      o.command
    ]
    return SH(EXEC_SCRIPT, o.mark, String(o.hostCap), '', lay.project, plan.service, ...argv)
  }
  return SH(
    EXEC_SCRIPT,
    o.mark,
    String(o.hostCap),
    plan.cwd ?? lay.path,
    '',
    '',
    'env',
    ...Object.entries(plan.env).map(([k, v]) => `${k}=${v}`),
    'sh',
    '-c',
    o.command
  )
}

/** After a time-out in a service container: stop what still carries the run's token there. */
export function killArgv(lay: Layout, plan: HostPlan, token: string): string[] {
  return [...releaseCompose(lay, plan), 'exec', '-T', plan.service!, ...SH(KILL_SCRIPT, token)]
}

/** The values of a release's .env worth masking: at least 6 characters, quotes taken off. */
export function envSecrets(envText: string): string[] {
  const out: string[] = []
  for (const line of envText.split(/\r?\n/)) {
    const value = /^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=\s*(.*)$/
      .exec(line)?.[1]
      ?.trim()
      .replace(/^(['"])(.*)\1$/, '$2')
    if (value && value.length >= 6) out.push(value)
  }
  return out
}

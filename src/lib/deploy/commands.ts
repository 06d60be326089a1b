/**
 * Commands a deploy runs for a release besides starting it, all before anything live changes except
 * post-deploy: the `pre-deploy` hook (every host), the `backup-command` and the `release-command` (the canary
 * host only, once per deploy), and the `post-deploy` hook (every host, after the switch).
 *
 * - The release command runs in a one-off container of the NEW image (`compose run --rm`, the release's own
 *   files: pinned digests, its `.env`), on the project's network, with `--no-deps` when a release is live
 *   (so nothing that serves is recreated; the services it needs, a database, already run) and with its
 *   dependencies when there is none yet (a first deploy: nothing live to change).
 * - Hooks and the backup run on the host (`sh -c`, the user's text as ONE argument) in the new release's
 *   folder, with SHIPLINE_* variables; the backup writes into SHIPLINE_BACKUP_DIR
 *   (`.shipline/backups/<release id>/`, kept exactly as long as the release is).
 *
 * Every one of them runs through COMMAND_SCRIPT under the step lock: HUP and PIPE ignored, output to a log
 * file in the release folder (not to the channel), bounded by `timeout` on the host; so a lost link or a
 * killed runner neither kills a migration half-way nor lets the lock go while it runs (the lock holder
 * waits for the step lock before it closes the transaction).
 */
import { UserError } from '../errors.js'
import type { CommandRecord } from '../release/journal.js'
import type { ReleaseMeta, ReleaseStore } from '../release/store.js'
import { validateServiceName } from '../compose/validate.js'

/** `release-command`: the service whose image runs it, and the command as argv (no shell unless asked). */
export interface ReleaseCommand {
  service: string
  argv: string[]
  /** the text as given, for logs and the ledger */
  text: string
  timeoutSec: number
}

/** A host command (`pre-deploy`, `post-deploy`, `backup-command`): shell text run with `sh -c`. */
export interface HostCommand {
  text: string
  timeoutSec: number
}

export interface ReleaseCommands {
  preDeploy?: HostCommand
  backup?: HostCommand
  release?: ReleaseCommand
  postDeploy?: HostCommand
}

/**
 * Splits a command line into words the way a POSIX shell does for plain words and quotes ('…', "…",
 * backslash escapes), without any expansion: `alembic upgrade head` → [alembic, upgrade, head]. A
 * command that needs a shell says so: `sh -c '…'`.
 */
export function splitWords(text: string, input: string): string[] {
  const words: string[] = []
  let cur = ''
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) throw new UserError(`Input '${input}' has an unclosed single quote: ${text}`)
      cur += text.slice(i + 1, end)
      i = end
      inWord = true
    } else if (c === '"') {
      let j = i + 1
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`'.includes(text[j + 1])) j++
        cur += text[j]
      }
      if (j >= text.length) throw new UserError(`Input '${input}' has an unclosed double quote: ${text}`)
      i = j
      inWord = true
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (inWord) words.push(cur)
  return words
}

/** `release-command: api=alembic upgrade head` → the service and argv; '' → undefined. */
export function parseReleaseCommand(
  raw: string,
  timeoutSec: number,
  input = 'release-command'
): ReleaseCommand | undefined {
  const text = raw.trim()
  if (!text) return undefined
  if (text.includes('\n'))
    throw new UserError(
      `Input '${input}' is one line, service=command (e.g. 'api=alembic upgrade head'); for several steps, one script in the image or 'api=sh -c "a && b"'.`
    )
  const eq = text.indexOf('=')
  if (eq <= 0)
    throw new UserError(
      `Input '${input}' must be service=command, e.g. '${input}: api=alembic upgrade head' (the service whose new image runs it).`
    )
  const service = validateServiceName(text.slice(0, eq).trim(), input)
  const command = text.slice(eq + 1).trim()
  const argv = splitWords(command, input)
  if (argv.length === 0)
    throw new UserError(
      `Input '${input}' names service '${service}' but no command: e.g. '${service}=alembic upgrade head'.`
    )
  return { service, argv, text: command, timeoutSec }
}

export function parseHostCommand(raw: string, timeoutSec: number): HostCommand | undefined {
  const text = raw.trim()
  return text ? { text, timeoutSec } : undefined
}

/** The release command's service must be one the release defines (checked before any host is contacted). */
export function checkReleaseCommand(
  rc: ReleaseCommand | undefined,
  services: string[],
  input = 'release-command'
): void {
  if (rc && !services.includes(rc.service))
    throw new UserError(
      `Input '${input}' names service '${rc.service}', which the compose files do not define. Known: ${services.join(', ')}.`
    )
}

/**
 * Runs one command under the step lock, output to a log file, bounded on the host.
 * args: log-file seconds cwd-or-empty container-to-remove-or-empty command…
 * Prints the log's last 64 KiB, then `EXIT <code>` (124: the time limit).
 */
export const COMMAND_SCRIPT = `trap '' HUP PIPE
log=$1; t=$2; cwd=$3; name=$4; shift 4
if [ -n "$cwd" ]; then cd "$cwd" || { echo "ERR cannot enter $cwd"; exit 70; }; fi
if command -v timeout >/dev/null 2>&1; then
  timeout -k 10 "$t" "$@" </dev/null >"$log" 2>&1; rc=$?
else
  "$@" </dev/null >"$log" 2>&1; rc=$?
fi
if [ -n "$name" ]; then docker rm -f "$name" >/dev/null 2>&1; fi
tail -c 65536 "$log"
echo
echo "EXIT $rc"
`

const SH = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'sh', ...args]

/** The last `n` non-empty lines of a command's output. */
export const tailLines = (out: string, n = 20): string =>
  out
    .split('\n')
    .map(l => l.replace(/\r$/, ''))
    .filter(l => l.trim())
    .slice(-n)
    .join('\n')

/** Compose's own lines around a one-off container's output (v1: progress lines, and the exit code last). */
const CHATTER =
  /^\s*(?:Creating|Starting|Recreating|Removing|Stopping|Pulling|Waiting|Network|Volume|Container)\b.*(?:\.\.\.|done|Created|Started|Removed|Running|Waiting|Healthy|Pulled|driver)\s*$/

export function composeOutput(out: string, exit: number | null): string {
  const lines = out.split('\n').map(l => l.replace(/\r$/, '').replace(/^.*\r/, ''))
  const kept = lines.filter(l => !CHATTER.test(l))
  while (kept.length && !kept[kept.length - 1].trim()) kept.pop()
  if (exit !== null && kept.length && kept[kept.length - 1].trim() === String(exit)) kept.pop()
  return kept.join('\n')
}

export interface CommandRun {
  record: CommandRecord
  ok: boolean
  /** a one-line account of a failure */
  why?: string
}

/** What SHIPLINE_* variables a host command sees. */
export function hostEnv(p: {
  store: ReleaseStore
  target: ReleaseMeta
  live?: ReleaseMeta
  backupDir?: string
}): Record<string, string> {
  const env: Record<string, string> = {
    SHIPLINE_HOST: p.store.label,
    SHIPLINE_PATH: p.store.layout.path,
    SHIPLINE_PROJECT: p.store.layout.project,
    SHIPLINE_RELEASE_ID: p.target.id,
    SHIPLINE_VERSION: p.target.version,
    SHIPLINE_RELEASE_DIR: p.store.layout.release(p.target.id),
    SHIPLINE_PREVIOUS_RELEASE_ID: p.live?.id ?? '',
    SHIPLINE_PREVIOUS_VERSION: p.live?.version ?? ''
  }
  if (p.backupDir) env.SHIPLINE_BACKUP_DIR = p.backupDir
  return env
}

/** `.shipline/backups/<release id>`: where the backup of a release's deploy goes. */
export const backupDir = (store: ReleaseStore, id: string): string => `${store.layout.state}/backups/${id}`

async function runScript(
  store: ReleaseStore,
  what: string,
  logFile: string,
  timeoutSec: number,
  cwd: string,
  container: string,
  argv: string[],
  record: Omit<CommandRecord, 'exit' | 'durationMs' | 'tail'>
): Promise<CommandRun> {
  const t0 = Date.now()
  const r = await store.step(SH(COMMAND_SCRIPT, logFile, String(timeoutSec), cwd, container, ...argv), '', {
    // the host's own `timeout` ends it; this is the backstop should the host have none
    timeoutMs: (timeoutSec + 60) * 1000
  })
  const durationMs = Date.now() - t0
  const m = /\nEXIT (\d+)\s*$/.exec('\n' + r.stdout)
  const exit = m ? Number(m[1]) : null
  const out = m ? r.stdout.slice(0, r.stdout.lastIndexOf('EXIT ')) : r.stdout + r.stderr
  const tail = tailLines(container ? composeOutput(out, exit) : out)
  const full: CommandRecord = { ...record, exit: exit === 124 ? null : exit, durationMs, tail }
  if (exit === 0) return { record: full, ok: true }
  // a container's stdout and stderr reach docker as two streams, so their order is not kept: quote the last
  // lines, not just one, so the error line is in the message whichever stream came last
  const last = tail.split('\n').slice(-3).join(' | ') || '(no output)'
  const why =
    exit === 124
      ? `${what} did not finish within ${timeoutSec}s and was stopped`
      : exit === null
        ? `${what} could not be run: ${(r.stderr || r.stdout).trim().split('\n').pop() || `exit ${r.code}`}`
        : `${what} failed (exit ${exit}): ${last}`
  return { record: full, ok: false, why }
}

/** A hook or the backup on the host, in the release folder, with SHIPLINE_* variables. */
export async function runHostCommand(
  store: ReleaseStore,
  name: 'pre-deploy' | 'post-deploy' | 'backup-command',
  cmd: HostCommand,
  env: Record<string, string>,
  target: ReleaseMeta
): Promise<CommandRun> {
  const dir = store.layout.release(target.id)
  const argv = ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'sh', '-c', cmd.text]
  if (name === 'backup-command' && env.SHIPLINE_BACKUP_DIR)
    argv.unshift('sh', '-c', 'umask 077; mkdir -p "$1" && shift && exec "$@"', 'sh', env.SHIPLINE_BACKUP_DIR)
  return runScript(store, name, `${dir}/${name}.log`, cmd.timeoutSec, dir, '', argv, {
    command: cmd.text,
    ...(name === 'backup-command' && env.SHIPLINE_BACKUP_DIR ? { dir: env.SHIPLINE_BACKUP_DIR } : {})
  })
}

/** The release command in a one-off container of the new release (argv from the runtime). */
export async function runReleaseCommand(
  store: ReleaseStore,
  rc: ReleaseCommand,
  target: ReleaseMeta,
  oneOff: (name: string) => string[],
  txn: string
): Promise<CommandRun> {
  const dir = store.layout.release(target.id)
  const name = `${store.layout.project}-release-${txn}`.replace(/[^A-Za-z0-9_.-]/g, '-')
  return runScript(
    store,
    `the release command (${rc.service}: ${rc.text})`,
    `${dir}/release-command.log`,
    rc.timeoutSec,
    dir,
    name,
    oneOff(name),
    { service: rc.service, command: rc.text }
  )
}

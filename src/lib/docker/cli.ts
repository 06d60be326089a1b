/**
 * The docker CLI, run as a child process with an explicit environment: every call of one build-push step
 * gets the same DOCKER_CONFIG (the step's temporary config folder). Secrets go to stdin, never argv.
 */
import { spawn } from 'node:child_process'

export interface DockerRunOptions {
  /** DOCKER_CONFIG for this call */
  configDir?: string
  /** extra environment (merged over process.env) */
  env?: Record<string, string | undefined>
  /** written to stdin, then stdin is closed (for --password-stdin) */
  stdin?: string
  /** each output line as it comes (stdout and stderr), e.g. to stream a build log */
  onLine?: (line: string) => void
  /** the docker binary (default `docker` from PATH) */
  bin?: string
  cwd?: string
}

export interface DockerResult {
  code: number
  stdout: string
  stderr: string
}

const KEEP = 256 * 1024

/** Runs `docker <args>`; resolves with the exit code and output (never rejects on a non-zero exit). */
export function runDocker(args: string[], opts: DockerRunOptions = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, ...opts.env }
    if (opts.configDir) env.DOCKER_CONFIG = opts.configDir
    // the action's inputs (INPUT_REGISTRY-PASSWORD among them) are no business of docker or its plugins
    for (const k of Object.keys(env))
      if (env[k] === undefined || (k.startsWith('INPUT_') && !opts.env?.[k])) delete env[k]
    const child = spawn(opts.bin ?? 'docker', args, { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    const partial = { out: '', err: '' }
    const feed = (which: 'out' | 'err', chunk: string): void => {
      if (!opts.onLine) return
      const text = partial[which] + chunk
      const lines = text.split(/\r?\n/)
      partial[which] = lines.pop() ?? ''
      for (const l of lines) opts.onLine(l)
    }
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (d: string) => {
      stdout = (stdout + d).slice(-KEEP)
      feed('out', d)
    })
    child.stderr.on('data', (d: string) => {
      stderr = (stderr + d).slice(-KEEP)
      feed('err', d)
    })
    child.on('error', e => {
      const err = e as NodeJS.ErrnoException
      reject(
        err.code === 'ENOENT' ? new Error(`${opts.bin ?? 'docker'} is not installed or not on PATH`) : err
      )
    })
    child.on('close', (code, signal) => {
      if (opts.onLine) for (const l of [partial.out, partial.err]) if (l) opts.onLine(l)
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr })
    })
    child.stdin.on('error', () => {
      /* the process may exit before reading stdin; its exit code tells */
    })
    child.stdin.end(opts.stdin ?? '')
  })
}

const NOISE =
  /^DEPRECATED:|^BuildKit is currently disabled|^environment-variable\.|^Install the buildx component|^https:\/\/docs\.docker\.com|^WARNING! Your credentials|^Configure a credential helper/
const FAILURE =
  /error|denied|unauthorized|forbidden|failed|not found|no such|invalid|refused|non-zero|unknown|credentials|timeout/i

/**
 * The line that says why docker failed: the last failure-looking line of stderr (where docker reports
 * errors), else of stdout, else the last line at all; deprecation notices and blank lines skipped.
 */
export function lastErrorLine(r: DockerResult): string {
  const meaningful = (text: string): string[] =>
    text
      .split(/\r?\n/)
      .map(l => l.trim())
      .filter(l => l && !NOISE.test(l))
  const err = meaningful(r.stderr)
  const out = meaningful(r.stdout)
  const pick =
    [...err].reverse().find(l => FAILURE.test(l)) ??
    [...out].reverse().find(l => FAILURE.test(l)) ??
    err.at(-1) ??
    out.at(-1)
  return (pick ?? `exit code ${r.code}`).replace(/^ERROR:\s*/, '').replace(/\.$/, '')
}

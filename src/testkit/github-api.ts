/**
 * A local stand-in of GitHub's REST API, for tests and the sandbox (GitHub itself is unreachable there).
 * It follows the documented routes, status codes and payloads of the endpoints shipline calls:
 *
 *   POST  /repos/{owner}/{repo}/statuses/{sha}                       201 status          (repos/create-commit-status)
 *   GET   /repos/{owner}/{repo}/commits/{ref}/statuses              200 status[]        (repos/list-commit-statuses-for-ref, newest first)
 *   GET   /repos/{owner}/{repo}/commits/{ref}/status                200 combined-commit-status (repos/get-combined-status-for-ref)
 *   POST  /repos/{owner}/{repo}/check-runs                           201 check-run       (checks/create)
 *   PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}            200 check-run       (checks/update)
 *   GET   /repos/{owner}/{repo}/check-runs/{check_run_id}            200 check-run       (checks/get)
 *   POST  /repos/{owner}/{repo}/deployments                          201 deployment      (repos/create-deployment; 409 when
 *                                                                      a required status context of the commit is not
 *                                                                      success: required_contexts, default every context)
 *   GET   /repos/{owner}/{repo}/deployments?sha&ref&task&environment 200 deployment[]    (repos/list-deployments, newest first)
 *   GET   /repos/{owner}/{repo}/deployments/{deployment_id}          200 deployment      (repos/get-deployment)
 *   POST  /repos/{owner}/{repo}/deployments/{deployment_id}/statuses 201 deployment-status (repos/create-deployment-status;
 *                                                                      auto_inactive marks older successful deployments
 *                                                                      of the same non-production environment inactive)
 *   GET   /repos/{owner}/{repo}/deployments/{deployment_id}/statuses 200 deployment-status[] (newest first)
 *
 * Any path prefix before `/repos/` is accepted (GITHUB_API_URL may be `http://host:port/api/v3`).
 * Authentication: `Authorization: token <t>` or `Bearer <t>`; a missing or unknown token answers 401
 * "Bad credentials"; a token listed in `readOnlyTokens` may GET but every write answers 403
 * "Resource not accessible by integration" (what a fork pull request's GITHUB_TOKEN gets).
 * Request bodies are validated like GitHub does: required fields ("Invalid request.\n\n\"x\" wasn't
 * supplied.", 422), enums and types (422 "Validation Failed" with an `errors` list), JSON only, 40-hex
 * SHAs for statuses (422 "No commit found for SHA"); unknown repositories (not `owner/repo` of `repos`,
 * when given) answer 404 "Not Found". Unknown routes answer 404.
 *
 * API:
 *   const gh = await start({ token: 'ghs_x', readOnlyTokens: ['ghs_ro'] })
 *   gh.url                      // base URL to put in GITHUB_API_URL
 *   gh.requests                 // every request: { method, path, query, headers, body, status, response }
 *   gh.statuses / gh.checkRuns / gh.deployments / gh.deploymentStatuses   // what was created, oldest first
 *   gh.failNext(status, body?)  // the next request (any route) answers this instead (e.g. 500, 502)
 *   await gh.stop()
 *
 * The enums below are type-checked against @octokit/openapi-types (GitHub's published OpenAPI description,
 * already in the tree through @actions/github): a value GitHub does not list fails to compile, and a value
 * GitHub lists but the stand-in lacks fails too.
 */
import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { operations } from '@octokit/openapi-types'

type Json<O extends keyof operations> = operations[O] extends {
  requestBody: { content: { 'application/json': infer B } }
}
  ? B
  : never
/** An array holding exactly the members of union T (compile error when one is missing or extra). */
function allOf<T extends string>() {
  return <A extends readonly T[]>(
    a: A & ([Exclude<T, A[number]>] extends [never] ? unknown : never)
  ): readonly T[] => a
}

const STATUS_STATES = allOf<Json<'repos/create-commit-status'>['state']>()([
  'error',
  'failure',
  'pending',
  'success'
] as const)
const CHECK_CREATE_STATUS = allOf<NonNullable<Json<'checks/create'>['status']>>()([
  'queued',
  'in_progress',
  'completed'
] as const)
// (the update body lists six statuses but intersects them with queued | in_progress | completed)
const CHECK_UPDATE_STATUS = allOf<NonNullable<Json<'checks/update'>['status']>>()([
  'queued',
  'in_progress',
  'completed'
] as const)
const CHECK_CONCLUSIONS = allOf<NonNullable<Json<'checks/create'>['conclusion']>>()([
  'action_required',
  'cancelled',
  'failure',
  'neutral',
  'success',
  'skipped',
  'stale',
  'timed_out'
] as const)
const ANNOTATION_LEVELS = allOf<
  NonNullable<Json<'checks/create'>['output']>['annotations'] extends (infer A)[] | undefined
    ? A extends { annotation_level: infer L extends string }
      ? L
      : never
    : never
>()(['notice', 'warning', 'failure'] as const)
const DEPLOYMENT_STATES = allOf<Json<'repos/create-deployment-status'>['state']>()([
  'error',
  'failure',
  'inactive',
  'in_progress',
  'queued',
  'pending',
  'success'
] as const)

const DOCS = 'https://docs.github.com/rest'

export interface RecordedRequest {
  method: string
  path: string
  query: Record<string, string>
  headers: Record<string, string | string[] | undefined>
  body: unknown
  status: number
  response: unknown
}

export interface StartOptions {
  /** tokens allowed to read and write (default: one, `ghs_testtoken0000000000000000000000000`, the runner's default) */
  token?: string | string[]
  /** tokens that may read but get 403 "Resource not accessible by integration" on writes */
  readOnlyTokens?: string[]
  /** `owner/repo` names that exist (default: any) */
  repos?: string[]
  /** branch or tag name → commit SHA, for deployments made from a ref (default: a SHA derived from the name) */
  refs?: Record<string, string>
  host?: string
  port?: number
}

type Obj = Record<string, unknown>

export interface GitHubApi {
  url: string
  requests: RecordedRequest[]
  statuses: (Obj & { repo: string; sha: string })[]
  checkRuns: (Obj & { repo: string; id: number })[]
  deployments: (Obj & { repo: string; id: number })[]
  deploymentStatuses: (Obj & { repo: string; deployment_id: number })[]
  failNext(status: number, body?: unknown): void
  stop(): Promise<void>
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Obj
  ) {
    super(String(body.message))
  }
}

const invalid = (msg: string): HttpError =>
  new HttpError(422, { message: `Invalid request.\n\n${msg}`, documentation_url: DOCS })
const validation = (resource: string, field: string, message: string): HttpError =>
  new HttpError(422, {
    message: 'Validation Failed',
    errors: [{ resource, code: 'custom', field, message }],
    documentation_url: DOCS
  })
const notFound = (): HttpError =>
  new HttpError(404, { message: 'Not Found', documentation_url: DOCS, status: '404' })

function need(body: Obj, field: string, type: 'string' | 'object' = 'string'): void {
  if (body[field] === undefined || body[field] === null) throw invalid(`"${field}" wasn't supplied.`)
  if (typeof body[field] !== type)
    throw invalid(`For '${field}', ${JSON.stringify(body[field])} is not a ${type}.`)
}
function optional(body: Obj, field: string, type: 'string' | 'boolean' | 'object' | 'array'): void {
  const v = body[field]
  if (v === undefined || (v === null && type === 'string')) return
  const ok = type === 'array' ? Array.isArray(v) : typeof v === type && v !== null
  if (!ok)
    throw invalid(
      `For '${field}', ${JSON.stringify(v)} is not ${type === 'array' ? 'an array' : `a ${type}`}.`
    )
}
function oneOf(resource: string, body: Obj, field: string, values: readonly string[]): void {
  const v = body[field]
  if (v === undefined) return
  if (typeof v !== 'string' || !values.includes(v))
    throw validation(resource, field, `${field} is not included in the list`)
}
function isoDate(body: Obj, field: string): void {
  const v = body[field]
  if (v === undefined) return
  if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v)) {
    throw invalid(`For '${field}', ${JSON.stringify(v)} is not a date-time (ISO 8601).`)
  }
}

function validateCheckRun(body: Obj, creating: boolean): void {
  if (creating) {
    need(body, 'name')
    need(body, 'head_sha')
  } else optional(body, 'name', 'string')
  for (const f of ['details_url', 'external_id']) optional(body, f, 'string')
  oneOf('CheckRun', body, 'status', creating ? CHECK_CREATE_STATUS : CHECK_UPDATE_STATUS)
  oneOf('CheckRun', body, 'conclusion', CHECK_CONCLUSIONS)
  isoDate(body, 'started_at')
  isoDate(body, 'completed_at')
  if (body.status === 'completed' && body.conclusion === undefined) {
    throw validation('CheckRun', 'conclusion', 'conclusion is required when status is completed')
  }
  if (body.completed_at !== undefined && body.conclusion === undefined) {
    throw validation('CheckRun', 'conclusion', 'conclusion is required when completed_at is given')
  }
  if (body.output !== undefined) {
    need(body, 'output', 'object')
    const out = body.output as Obj
    if (creating) need(out, 'title')
    else optional(out, 'title', 'string')
    need(out, 'summary')
    optional(out, 'text', 'string')
    if ((out.summary as string).length > 65535)
      throw validation('CheckRun', 'output.summary', 'summary is too long (maximum is 65535 characters)')
    if (typeof out.text === 'string' && out.text.length > 65535)
      throw validation('CheckRun', 'output.text', 'text is too long (maximum is 65535 characters)')
    optional(out, 'annotations', 'array')
    const anns = (out.annotations ?? []) as Obj[]
    if (anns.length > 50)
      throw validation('CheckRun', 'output.annotations', 'annotations are limited to 50 per request')
    for (const a of anns) {
      need(a, 'path')
      need(a, 'message')
      if (typeof a.start_line !== 'number' || typeof a.end_line !== 'number')
        throw invalid(`"start_line" and "end_line" must be numbers.`)
      need(a, 'annotation_level')
      oneOf('CheckRun', a, 'annotation_level', ANNOTATION_LEVELS)
    }
  }
}

/** Starts the stand-in on a free port of 127.0.0.1. */
export async function start(opts: StartOptions = {}): Promise<GitHubApi> {
  const tokens = new Set([opts.token ?? 'ghs_testtoken0000000000000000000000000'].flat())
  const readOnly = new Set(opts.readOnlyTokens ?? [])
  const requests: RecordedRequest[] = []
  const statuses: GitHubApi['statuses'] = []
  const checkRuns: GitHubApi['checkRuns'] = []
  const deployments: GitHubApi['deployments'] = []
  const deploymentStatuses: GitHubApi['deploymentStatuses'] = []
  const failures: { status: number; body: unknown }[] = []
  let nextId = 1000
  let base = ''
  const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  const nodeId = (kind: string, id: number): string => Buffer.from(`${kind}${id}`).toString('base64')
  const creator = { login: 'github-actions[bot]', id: 41898282, type: 'Bot', node_id: 'MDM6Qm90NDE4OTgyODI=' }
  const app = {
    id: 15368,
    slug: 'github-actions',
    name: 'GitHub Actions',
    owner: { login: 'github', id: 9919 }
  }
  const shaOf = (ref: string): string =>
    /^[0-9a-f]{40}$/i.test(ref)
      ? ref.toLowerCase()
      : (opts.refs?.[ref] ?? createHash('sha1').update(`ref:${ref}`).digest('hex'))

  function route(
    method: string,
    path: string,
    query: Record<string, string>,
    body: Obj,
    token: string
  ): [number, unknown] {
    const m = /\/repos\/([^/]+)\/([^/]+)(\/.*)$/.exec(path)
    if (!m) throw notFound()
    const repo = `${decodeURIComponent(m[1])}/${decodeURIComponent(m[2])}`
    const rest = m[3].replace(/\/$/, '')
    if (opts.repos && !opts.repos.includes(repo)) throw notFound()
    const repoUrl = `${base}/repos/${repo}`
    if (method !== 'GET' && readOnly.has(token)) {
      throw new HttpError(403, {
        message: 'Resource not accessible by integration',
        documentation_url: `${DOCS}`,
        status: '403'
      })
    }
    let r: RegExpExecArray | null
    if (method === 'POST' && (r = /^\/statuses\/([^/]+)$/.exec(rest))) {
      const sha = r[1]
      need(body, 'state')
      oneOf('Status', body, 'state', STATUS_STATES)
      for (const f of ['target_url', 'description', 'context']) optional(body, f, 'string')
      if (!/^[0-9a-f]{40}$/i.test(sha))
        throw new HttpError(422, { message: `No commit found for SHA: ${sha}`, documentation_url: DOCS })
      const id = nextId++
      const t = now()
      const status = {
        url: `${repoUrl}/statuses/${sha}`,
        avatar_url: null,
        id,
        node_id: nodeId('StatusContext', id),
        state: body.state,
        description: body.description ?? null,
        target_url: body.target_url ?? null,
        context: body.context ?? 'default',
        created_at: t,
        updated_at: t,
        creator
      }
      statuses.push({ ...status, repo, sha })
      return [201, status]
    }
    if (method === 'GET' && (r = /^\/commits\/([^/]+)\/(statuses|status)$/.exec(rest))) {
      const sha = shaOf(decodeURIComponent(r[1]))
      const list = statuses.filter(x => x.repo === repo && x.sha === sha).reverse()
      if (r[2] === 'statuses') return [200, page(list, query).map(stripStatus)]
      const latest = [...latestStatuses(repo, sha).keys()].map(c => list.find(x => x.context === c)!)
      const states = latest.map(x => x.state)
      const state = states.some(x => x === 'error' || x === 'failure')
        ? 'failure'
        : states.length === 0 || states.some(x => x === 'pending')
          ? 'pending'
          : 'success'
      return [
        200,
        {
          state,
          statuses: latest.map(stripStatus),
          sha,
          total_count: latest.length,
          repository: { full_name: repo }
        }
      ]
    }
    if (method === 'POST' && rest === '/check-runs') {
      validateCheckRun(body, true)
      const id = nextId++
      const run: GitHubApi['checkRuns'][number] = { repo, id }
      Object.assign(run, checkRunBody(run, body, repoUrl, id))
      checkRuns.push(run)
      return [201, present(run)]
    }
    if ((r = /^\/check-runs\/(\d+)$/.exec(rest))) {
      const run = checkRuns.find(c => c.id === Number(r![1]) && c.repo === repo)
      if (!run) throw notFound()
      if (method === 'GET') return [200, present(run)]
      if (method === 'PATCH') {
        validateCheckRun(body, false)
        Object.assign(run, checkRunBody(run, body, repoUrl, run.id))
        return [200, present(run)]
      }
    }
    if (rest === '/deployments' && method === 'POST') {
      need(body, 'ref')
      for (const f of ['task', 'environment', 'description']) optional(body, f, 'string')
      for (const f of ['auto_merge', 'transient_environment', 'production_environment'])
        optional(body, f, 'boolean')
      optional(body, 'required_contexts', 'array')
      if (
        body.payload !== undefined &&
        typeof body.payload !== 'string' &&
        (typeof body.payload !== 'object' || body.payload === null || Array.isArray(body.payload))
      ) {
        throw invalid(`For 'payload', ${JSON.stringify(body.payload)} is not an object or a string.`)
      }
      // GitHub verifies commit statuses first: the given required_contexts, or (when omitted) every
      // context set on the commit, must be 'success', else 409 (pass required_contexts: [] to skip)
      const sha = shaOf(body.ref as string)
      const latest = latestStatuses(repo, sha)
      const required = (body.required_contexts as string[] | undefined) ?? [...latest.keys()]
      const bad = required.filter(c => latest.get(c) !== 'success')
      if (bad.length) {
        throw new HttpError(409, {
          message: `Conflict: Commit status checks failed for ${String(body.ref)}.`,
          errors: [
            {
              contexts: bad.map(c => ({ context: c, state: latest.get(c) ?? 'missing' })),
              resource: 'Deployment',
              field: 'required_contexts',
              code: 'invalid'
            }
          ],
          documentation_url: DOCS
        })
      }
      const id = nextId++
      const t = now()
      const environment = (body.environment as string | undefined) ?? 'production'
      const dep = {
        url: `${repoUrl}/deployments/${id}`,
        id,
        node_id: nodeId('Deployment', id),
        sha,
        ref: body.ref,
        task: body.task ?? 'deploy',
        payload: typeof body.payload === 'string' ? safeJson(body.payload) : (body.payload ?? {}),
        original_environment: environment,
        environment,
        description: body.description ?? null,
        creator,
        created_at: t,
        updated_at: t,
        statuses_url: `${repoUrl}/deployments/${id}/statuses`,
        repository_url: repoUrl,
        transient_environment: body.transient_environment ?? false,
        production_environment: body.production_environment ?? environment === 'production',
        performed_via_github_app: app
      }
      deployments.push({ ...dep, repo })
      return [201, dep]
    }
    if (rest === '/deployments' && method === 'GET') {
      const list = deployments
        .filter(d => d.repo === repo)
        .filter(d => (query.sha ? d.sha === query.sha : true))
        .filter(d => (query.ref ? d.ref === query.ref : true))
        .filter(d => (query.task ? d.task === query.task : true))
        .filter(d => (query.environment ? d.environment === query.environment : true))
        .reverse()
      return [200, page(list, query).map(strip)]
    }
    if ((r = /^\/deployments\/(\d+)(\/statuses)?$/.exec(rest))) {
      const dep = deployments.find(d => d.id === Number(r![1]) && d.repo === repo)
      if (!dep) throw notFound()
      if (!r[2] && method === 'GET') return [200, strip(dep)]
      if (r[2] && method === 'GET') {
        const list = deploymentStatuses.filter(s => s.deployment_id === dep.id).reverse()
        return [200, page(list, query).map(strip)]
      }
      if (r[2] && method === 'POST') {
        need(body, 'state')
        oneOf('DeploymentStatus', body, 'state', DEPLOYMENT_STATES)
        for (const f of ['target_url', 'log_url', 'description', 'environment', 'environment_url'])
          optional(body, f, 'string')
        optional(body, 'auto_inactive', 'boolean')
        if (typeof body.description === 'string' && body.description.length > 140) {
          throw validation(
            'DeploymentStatus',
            'description',
            'description is too long (maximum is 140 characters)'
          )
        }
        const previous = deploymentStatuses.filter(s => s.deployment_id === dep.id).at(-1)
        const environment =
          (body.environment as string | undefined) ??
          (previous?.environment as string | undefined) ??
          dep.environment
        const status = addDeploymentStatus(dep, {
          state: body.state,
          description: body.description ?? '',
          environment,
          target_url: body.target_url ?? body.log_url ?? '',
          log_url: body.log_url ?? body.target_url ?? '',
          environment_url: body.environment_url ?? ''
        })
        dep.environment = environment
        if (body.state === 'success' && body.auto_inactive !== false && !dep.production_environment) {
          for (const other of deployments) {
            if (other === dep || other.repo !== repo || other.environment !== environment) continue
            if (other.transient_environment || other.production_environment) continue
            const last = deploymentStatuses.filter(s => s.deployment_id === other.id).at(-1)
            if (last?.state === 'success')
              addDeploymentStatus(other, { ...strip(last), state: 'inactive', description: '' })
          }
        }
        return [201, status]
      }
    }
    throw notFound()
  }

  /** context → state of the newest status of each context on a commit */
  function latestStatuses(repo: string, sha: string): Map<string, string> {
    const out = new Map<string, string>()
    for (const x of statuses)
      if (x.repo === repo && x.sha === sha) out.set(String(x.context), String(x.state))
    return out
  }

  function addDeploymentStatus(dep: GitHubApi['deployments'][number], fields: Obj): Obj {
    const id = nextId++
    const t = now()
    const status = {
      url: `${dep.url}/statuses/${id}`,
      id,
      node_id: nodeId('DeploymentStatus', id),
      creator,
      created_at: t,
      updated_at: t,
      deployment_url: dep.url,
      repository_url: dep.repository_url,
      performed_via_github_app: app,
      ...fields
    }
    dep.updated_at = t
    deploymentStatuses.push({ ...status, repo: dep.repo, deployment_id: dep.id })
    return status
  }

  function checkRunBody(prev: Obj, body: Obj, repoUrl: string, id: number): Obj {
    const status = body.conclusion !== undefined ? 'completed' : (body.status ?? prev.status ?? 'queued')
    const prevOut = (prev.output ?? {}) as Obj
    const out = (body.output ?? {}) as Obj
    const annotations = [...((prev.annotations as Obj[]) ?? []), ...((out.annotations as Obj[]) ?? [])]
    return {
      id,
      name: body.name ?? prev.name,
      head_sha: body.head_sha ?? prev.head_sha,
      node_id: nodeId('CheckRun', id),
      external_id: body.external_id ?? prev.external_id ?? '',
      url: `${repoUrl}/check-runs/${id}`,
      html_url: `https://github.com/${repoUrl.split('/repos/')[1]}/runs/${id}`,
      details_url: body.details_url ?? prev.details_url ?? null,
      status,
      conclusion: body.conclusion ?? prev.conclusion ?? null,
      started_at: body.started_at ?? prev.started_at ?? now(),
      completed_at: status === 'completed' ? (body.completed_at ?? prev.completed_at ?? now()) : null,
      output: {
        title: out.title ?? prevOut.title ?? null,
        summary: out.summary ?? prevOut.summary ?? null,
        text: out.text ?? prevOut.text ?? null,
        annotations_count: annotations.length,
        annotations_url: `${repoUrl}/check-runs/${id}/annotations`
      },
      annotations,
      check_suite: { id: 5000 + id },
      app,
      pull_requests: []
    }
  }

  const present = (run: Obj): Obj => {
    const { annotations: _a, ...rest } = strip(run)
    return rest
  }

  const server = createServer((req, res) => void handle(req, res))
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x')
    const query = Object.fromEntries(u.searchParams)
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const raw = Buffer.concat(chunks).toString('utf8')
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: u.pathname,
      query,
      headers: req.headers,
      body: undefined,
      status: 0,
      response: undefined
    }
    requests.push(rec)
    let status: number
    let payload: unknown
    try {
      const auth = /^(?:token|bearer)\s+(\S+)$/i.exec(req.headers.authorization ?? '')
      const token = auth?.[1] ?? ''
      if (!tokens.has(token) && !readOnly.has(token)) {
        throw new HttpError(401, { message: 'Bad credentials', documentation_url: DOCS, status: '401' })
      }
      let body: Obj = {}
      if (raw.trim() !== '') {
        try {
          body = JSON.parse(raw) as Obj
        } catch {
          throw new HttpError(400, {
            message: 'Problems parsing JSON',
            documentation_url: DOCS,
            status: '400'
          })
        }
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          throw new HttpError(400, {
            message: 'Body should be a JSON object',
            documentation_url: DOCS,
            status: '400'
          })
        }
      }
      rec.body = raw.trim() === '' ? undefined : body
      const fail = failures.shift()
      if (fail) [status, payload] = [fail.status, fail.body ?? { message: 'Server Error' }]
      else [status, payload] = route(rec.method, u.pathname, query, body, token)
    } catch (e) {
      if (!(e instanceof HttpError)) throw e
      status = e.status
      payload = e.body
    }
    rec.status = status
    rec.response = payload
    const text = JSON.stringify(payload)
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'x-github-media-type': 'github.v3; format=json',
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': '4999',
      'x-github-request-id': `STANDIN:${requests.length}`
    })
    res.end(text)
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve())
  })
  const addr = server.address() as AddressInfo
  base = `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
  return {
    url: base,
    requests,
    statuses,
    checkRuns,
    deployments,
    deploymentStatuses,
    failNext: (status, body) => void failures.push({ status, body }),
    stop: () =>
      new Promise<void>(resolve => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

function stripStatus(o: Obj): Obj {
  const { repo: _r, sha: _s, ...rest } = o
  return rest
}

function strip<T extends Obj>(o: T): Obj {
  const { repo: _r, deployment_id: _d, ...rest } = o
  return rest
}

function page<T>(list: T[], query: Record<string, string>): T[] {
  const per = Math.min(Math.max(Number(query.per_page ?? 30) || 30, 1), 100)
  const p = Math.max(Number(query.page ?? 1) || 1, 1)
  return list.slice((p - 1) * per, p * per)
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

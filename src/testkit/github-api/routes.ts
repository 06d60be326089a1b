/**
 * The stand-in's routes: commit statuses and the combined status, check runs, deployments and their
 * statuses (see github-api.ts for the list), over the records one server keeps.
 */
import { createHash } from 'node:crypto'
import type { GitHubApi, Obj, StartOptions } from './types.js'
import {
  DEPLOYMENT_STATES,
  DOCS,
  HttpError,
  invalid,
  need,
  notFound,
  oneOf,
  optional,
  STATUS_STATES,
  validateCheckRun,
  validation
} from './validate.js'

/** What the routes read and add to: the server's records (the same arrays the GitHubApi handle shows). */
export interface Store {
  opts: StartOptions
  readOnly: Set<string>
  statuses: GitHubApi['statuses']
  checkRuns: GitHubApi['checkRuns']
  deployments: GitHubApi['deployments']
  deploymentStatuses: GitHubApi['deploymentStatuses']
  /** the server's base URL (known once it listens) */
  base(): string
}

export type Route = (
  method: string,
  path: string,
  query: Record<string, string>,
  body: Obj,
  token: string
) => [number, unknown]

/** The route handler of one stand-in: answers [status, payload], or throws an HttpError. */
export function router(store: Store): Route {
  const { opts, readOnly, statuses, checkRuns, deployments, deploymentStatuses } = store
  let nextId = 1000
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
    const repoUrl = `${store.base()}/repos/${repo}`
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

  return route
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

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
 * The parts: github-api/types.ts (the API and request types), github-api/validate.ts (GitHub's error
 * answers, request-body validation), github-api/routes.ts (the routes and what they store); this module
 * runs the HTTP server (authentication, JSON bodies, failNext, recording).
 *
 * API:
 *   const gh = await start({ token: 'ghs_x', readOnlyTokens: ['ghs_ro'] })
 *   gh.url                      // base URL to put in GITHUB_API_URL
 *   gh.requests                 // every request: { method, path, query, headers, body, status, response }
 *   gh.statuses / gh.checkRuns / gh.deployments / gh.deploymentStatuses   // what was created, oldest first
 *   gh.failNext(status, body?)  // the next request (any route) answers this instead (e.g. 500, 502)
 *   await gh.stop()
 *
 * The enums (github-api/validate.ts) are type-checked against @octokit/openapi-types (GitHub's published
 * OpenAPI description, already in the tree through @actions/github): a value GitHub does not list fails to
 * compile, and a value GitHub lists but the stand-in lacks fails too.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { router } from './github-api/routes.js'
import type { GitHubApi, Obj, RecordedRequest, StartOptions } from './github-api/types.js'
import { DOCS, HttpError } from './github-api/validate.js'

export type { GitHubApi, RecordedRequest, StartOptions } from './github-api/types.js'

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
  let base = ''
  const route = router({
    opts,
    readOnly,
    statuses,
    checkRuns,
    deployments,
    deploymentStatuses,
    base: () => base
  })

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

/** The stand-in GitHub API's public types: its options, what it records and the handle start() returns. */

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

export type Obj = Record<string, unknown>

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

/**
 * Reports an action's verdict on the commit under test, for pull-request status checks:
 * `status` posts a commit status (pending, then success/failure), `check` a check run (in progress, then
 * completed with the results table as its output).
 * The commit is the PR head (`pull_request.head.sha`) on pull_request events, else GITHUB_SHA
 * (commitUnderTest() in src/lib/github/run.ts).
 * The API is GitHub's (GITHUB_API_URL, honoured by getOctokit). Reporting never fails the step: a token that
 * may not write (fork pull requests get a read-only GITHUB_TOKEN: 403 "Resource not accessible by
 * integration") or any other API failure is a warning that says what to grant.
 * API calls are bounded (10 s each); GitHub's own API is not a smoke-test target, so no retries.
 * @actions/github (octokit) is imported only when a run reports: `report: summary` never loads it.
 */
import * as core from '@actions/core'
import { redacted } from './secrets.js'
import type { getOctokit } from '@actions/github'
import { UserError, errorMessage } from '../lib/errors.js'
import { commitUnderTest, runUrl } from '../lib/github/run.js'

export type ReportMode = 'summary' | 'status' | 'check'
export const REPORT_MODES: readonly ReportMode[] = ['summary', 'status', 'check']

export function parseReportMode(raw: string, inputName = 'report'): ReportMode {
  const v = raw.trim().toLowerCase() || 'summary'
  if (!(REPORT_MODES as readonly string[]).includes(v)) {
    throw new UserError(
      `Input '${inputName}' must be one of ${REPORT_MODES.join(', ')}, got '${raw.trim()}'.`
    )
  }
  return v as ReportMode
}

export interface Verdict {
  passed: boolean
  /** one line, e.g. "3 of 3 checks passed" (clipped to 140 characters for statuses) */
  description: string
  /** Markdown for a check run's output */
  markdown: string
  title: string
}

/** API payload text: every secret of the run redacted, then clipped to the field's limit */
const clip = (raw: string, n: number): string => {
  const s = redacted(raw)
  return s.length > n ? `${s.slice(0, n - 1)}…` : s
}

/**
 * Two phases: `begin()` marks the commit at once (a pending status, or an in-progress check run) so the pull
 * request shows the check running, without delaying the work (call it without awaiting); `finish()` sets the
 * verdict (the same status context, or the same check run completed). The first failure (e.g. a read-only
 * token) is one warning and the rest is skipped. Returns what was reported, for the log.
 */
type Octokit = ReturnType<typeof getOctokit>
type Where = { owner: string; repo: string; sha: string }

export class Reporter {
  /** the client and the commit, once @actions/github is loaded; undefined when reporting is off or failed */
  private readonly client?: Promise<{ octokit: Octokit; where: Where } | undefined>
  private begun?: Promise<void>
  private checkRunId?: number
  private failed = false

  constructor(
    readonly mode: ReportMode,
    token: string,
    readonly name: string
  ) {
    if (mode === 'summary') return
    if (!token) {
      core.warning(
        `report: ${mode} skipped: no github-token. Pass 'github-token: \${{ github.token }}' (the default).`
      )
      this.failed = true
      return
    }
    this.client = import('@actions/github')
      .then(({ context, getOctokit }) => {
        const { owner, repo } = context.repo
        const where = { owner, repo, sha: commitUnderTest() }
        return { where, octokit: getOctokit(token, { request: { signal: AbortSignal.timeout(10_000) } }) }
      })
      .catch(e => {
        this.warn(e)
        return undefined
      })
  }

  /** Marks the commit as being checked (pending status / in-progress check run). Never throws. */
  begin(description: string): Promise<void> {
    this.begun = this.call(async (octokit, { owner, repo, sha }) => {
      if (this.mode === 'status') {
        await octokit.rest.repos.createCommitStatus({
          owner,
          repo,
          sha,
          state: 'pending',
          context: this.name,
          description: clip(description, 140),
          ...link('target_url')
        })
      } else {
        const run = await octokit.rest.checks.create({
          owner,
          repo,
          name: this.name,
          head_sha: sha,
          status: 'in_progress',
          started_at: new Date().toISOString(),
          ...link('details_url'),
          output: { title: clip(description, 255), summary: clip(description, 65535) }
        })
        this.checkRunId = Number(run.data.id)
      }
    })
    return this.begun
  }

  /** Sets the verdict; returns what was reported, or undefined when skipped. Never throws. */
  async finish(v: Verdict): Promise<string | undefined> {
    await this.begun
    let done: string | undefined
    await this.call(async (octokit, { owner, repo, sha }) => {
      const state: 'success' | 'failure' = v.passed ? 'success' : 'failure'
      if (this.mode === 'status') {
        await octokit.rest.repos.createCommitStatus({
          owner,
          repo,
          sha,
          state,
          context: this.name,
          description: clip(v.description, 140),
          ...link('target_url')
        })
        done = `commit status '${this.name}' (${state}) on ${sha}`
        return
      }
      const fields = {
        owner,
        repo,
        name: this.name,
        status: 'completed' as const,
        conclusion: state,
        completed_at: new Date().toISOString(),
        ...link('details_url'),
        output: {
          title: clip(v.title, 255),
          summary: clip(v.description, 65535),
          text: clip(v.markdown, 65535)
        }
      }
      const run =
        this.checkRunId !== undefined
          ? await octokit.rest.checks.update({ ...fields, check_run_id: this.checkRunId })
          : await octokit.rest.checks.create({ ...fields, head_sha: sha })
      done = `check run '${this.name}' (${state}) on ${sha}: ${run.data.html_url ?? run.data.id}`
    })
    return done
  }

  private async call(f: (octokit: Octokit, where: Where) => Promise<void>): Promise<void> {
    if (this.mode === 'summary' || this.failed || !this.client) return
    const client = await this.client
    if (!client || this.failed) return
    try {
      await f(client.octokit, client.where)
    } catch (e) {
      this.warn(e)
    }
  }

  private warn(e: unknown): void {
    if (this.failed) return
    this.failed = true
    const status = (e as { status?: number }).status
    const msg = errorMessage(e).split('\n')[0]
    const perm = this.mode === 'status' ? 'statuses: write' : 'checks: write'
    if (status === 403 && /not accessible by integration/i.test(msg)) {
      core.warning(
        `report: ${this.mode} skipped: the token may not write ${this.mode === 'status' ? 'commit statuses' : 'check runs'} (${msg}). ` +
          `Pull requests from forks get a read-only token; elsewhere grant 'permissions: ${perm}' to the job.`
      )
    } else {
      core.warning(
        `report: ${this.mode} failed${status ? ` (HTTP ${status})` : ''}: ${msg}. The result stands; check 'github-token' and 'permissions: ${perm}'.`
      )
    }
  }
}

function link<K extends string>(key: K): Partial<Record<K, string>> {
  const url = runUrl()
  return url ? ({ [key]: url } as Record<K, string>) : {}
}

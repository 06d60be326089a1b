/**
 * Reports an action's verdict on the commit under test, for pull-request status checks:
 * `status` posts a commit status, `check` creates a completed check run whose output holds the table.
 * The commit is the PR head (`pull_request.head.sha`) on pull_request events, else GITHUB_SHA.
 * The API is GitHub's (GITHUB_API_URL, honoured by getOctokit). Reporting never fails the step: a token that
 * may not write (fork pull requests get a read-only GITHUB_TOKEN: 403 "Resource not accessible by
 * integration") or any other API failure is a warning that says what to grant.
 */
import * as core from '@actions/core'
import { context, getOctokit } from '@actions/github'
import { UserError, errorMessage } from '../lib/errors.js'

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
  mode: ReportMode
  token: string
  /** status context / check run name */
  name: string
  passed: boolean
  /** one line, e.g. "3 of 3 checks passed" (clipped to 140 characters for statuses) */
  description: string
  /** Markdown for a check run's output */
  markdown: string
  title: string
}

/** The commit the workflow tests: the PR head on pull_request events, else GITHUB_SHA. */
export function commitUnderTest(): string {
  const pr = context.payload.pull_request as { head?: { sha?: string } } | undefined
  return pr?.head?.sha ?? context.sha
}

function runUrl(): string | undefined {
  const server = process.env.GITHUB_SERVER_URL ?? 'https://github.com'
  const repo = process.env.GITHUB_REPOSITORY
  const run = process.env.GITHUB_RUN_ID
  return repo && run ? `${server}/${repo}/actions/runs/${run}` : undefined
}

const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s)

/** Posts the verdict; returns what was created (for logs), or undefined when skipped. */
export async function reportVerdict(v: Verdict): Promise<string | undefined> {
  if (v.mode === 'summary') return undefined
  if (!v.token) {
    core.warning(
      `report: ${v.mode} skipped: no github-token. Pass 'github-token: \${{ github.token }}' (the default).`
    )
    return undefined
  }
  const targetUrl = runUrl()
  let sha = ''
  try {
    sha = commitUnderTest()
    const { owner, repo } = context.repo
    const octokit = getOctokit(v.token, { request: { signal: AbortSignal.timeout(10_000) } })
    if (v.mode === 'status') {
      await octokit.rest.repos.createCommitStatus({
        owner,
        repo,
        sha,
        state: v.passed ? 'success' : 'failure',
        context: v.name,
        description: clip(v.description, 140),
        ...(targetUrl ? { target_url: targetUrl } : {})
      })
      return `commit status '${v.name}' (${v.passed ? 'success' : 'failure'}) on ${sha}`
    }
    const created = await octokit.rest.checks.create({
      owner,
      repo,
      name: v.name,
      head_sha: sha,
      status: 'completed',
      conclusion: v.passed ? 'success' : 'failure',
      completed_at: new Date().toISOString(),
      ...(targetUrl ? { details_url: targetUrl } : {}),
      output: {
        title: clip(v.title, 255),
        summary: clip(v.description, 65535),
        text: clip(v.markdown, 65535)
      }
    })
    return `check run '${v.name}' (${v.passed ? 'success' : 'failure'}) on ${sha}: ${created.data.html_url ?? created.data.id}`
  } catch (e) {
    const status = (e as { status?: number }).status
    const msg = errorMessage(e).split('\n')[0]
    const perm = v.mode === 'status' ? 'statuses: write' : 'checks: write'
    if (status === 403 && /not accessible by integration/i.test(msg)) {
      core.warning(
        `report: ${v.mode} skipped: the token may not write ${v.mode === 'status' ? 'commit statuses' : 'check runs'} (${msg}). ` +
          `Pull requests from forks get a read-only token; elsewhere grant 'permissions: ${perm}' to the job.`
      )
    } else {
      core.warning(
        `report: ${v.mode} failed${status ? ` (HTTP ${status})` : ''}: ${msg}. The smoke result stands; check 'github-token' and 'permissions: ${perm}'.`
      )
    }
    return undefined
  }
}

/**
 * Facts about the workflow run, from the runner's environment: the run's web URL and the commit under
 * test (the pull request head on pull request events). One place for both; no @actions/core here.
 */
import { readFileSync } from 'node:fs'

type Env = Record<string, string | undefined>

/** `<server>/<owner>/<repo>/actions/runs/<id>`, or undefined outside a workflow run. */
export function runUrl(env: Env = process.env): string | undefined {
  const server = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/+$/, '')
  const repo = env.GITHUB_REPOSITORY
  const run = env.GITHUB_RUN_ID
  return repo && run ? `${server}/${repo}/actions/runs/${run}` : undefined
}

const PULL_REQUEST_EVENTS = /^pull_request(_target|_review|_review_comment)?$/

/** The pull request head SHA from the event payload, when the event is a pull request. */
export function pullRequestHead(
  eventName: string | undefined,
  eventPath: string | undefined
): string | undefined {
  if (!eventName || !PULL_REQUEST_EVENTS.test(eventName) || !eventPath) return undefined
  try {
    const event = JSON.parse(readFileSync(eventPath, 'utf8')) as {
      pull_request?: { head?: { sha?: unknown } }
    }
    const sha = event.pull_request?.head?.sha
    return typeof sha === 'string' && sha !== '' ? sha : undefined
  } catch {
    return undefined
  }
}

/** The commit the workflow tests: the PR head on pull request events, else GITHUB_SHA ('' when neither). */
export function commitUnderTest(env: Env = process.env): string {
  return pullRequestHead(env.GITHUB_EVENT_NAME, env.GITHUB_EVENT_PATH) ?? env.GITHUB_SHA ?? ''
}

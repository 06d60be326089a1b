/**
 * The smoke step shared by smoke-test and ship: masks every credential form, parses the checks, runs them
 * inside one deadline, writes the summary. The caller sets its outputs and decides what a failure means.
 */
import * as core from '@actions/core'
import { UserError } from '../lib/errors.js'
import { Redactor, displayUrl } from '../lib/redact.js'
import { parseChecks } from '../lib/smoke/checks.js'
import { parseBaseUrl, runSmoke, type SmokeReport } from '../lib/smoke/run.js'
import { summaryMarkdown, verdict } from '../lib/smoke/summary.js'
import { validateExposition } from '../lib/prometheus/validate.js'

export interface SmokeStepOptions {
  url: string
  /** the input that named the URL, for error messages */
  urlInput: string
  checksText: string
  checksInput: string
  headers: Record<string, string>
  timeout: number
  requestTimeout: number
  insecureTls: boolean
  /** performance.now() the deadline counts from (default: now; smoke-test passes 0, its process start) */
  startedAt?: number
  /** marks the commit as soon as the checks start (smoke-test's pending status / in-progress check run) */
  begin?: (description: string) => void
  /** called with a one-line reason when the checks could not run at all, before the error is thrown */
  aborted?: (why: string) => Promise<void>
}

export interface SmokeStep {
  report: SmokeReport
  /** one line: how many passed, in how long */
  line: string
  markdown: string
  /** the first failing check, as `path: reason` */
  firstFailure?: string
}

export async function smokeStep(o: SmokeStepOptions): Promise<SmokeStep> {
  // Secrets first: nothing is logged before every credential form is masked.
  const redactor = new Redactor()
  const checks = parseChecks(o.checksText, o.checksInput)
  redactor.addUrl(o.url)
  for (const v of Object.values(o.headers)) redactor.addHeaderValue(v)
  for (const c of checks) for (const v of Object.values(c.headers)) redactor.addHeaderValue(v)
  for (const form of redactor.forms()) core.setSecret(form) // forms() already holds the base64 and URL-encoded forms

  if (o.url.trim() === '')
    throw new UserError(
      `Input '${o.urlInput}' is required: the base URL of the deployment, e.g. '${o.urlInput}: https://stage.example.com'.`
    )
  parseBaseUrl(o.url)
  const target = displayUrl(o.url.trim())
  core.info(
    `smoke-test: ${target}: ${checks.length} check${checks.length === 1 ? '' : 's'}, deadline ${o.timeout}s, ${o.requestTimeout}s per request`
  )
  if (o.insecureTls) core.warning('insecure-tls: TLS certificates are not verified')
  o.begin?.(`checking ${checks.length} endpoint${checks.length === 1 ? '' : 's'} of ${target}`)
  core.startGroup(`attempt log (${checks.length} checks at once)`)
  const report = await runSmoke({
    url: o.url.trim(),
    checks,
    timeoutMs: o.timeout * 1000,
    requestTimeoutMs: Math.min(o.requestTimeout, o.timeout) * 1000,
    headers: o.headers,
    insecureTls: o.insecureTls,
    validate: validateExposition,
    redactor,
    log: line => core.info(line),
    startedAt: o.startedAt
  })
    .catch(async (e: unknown) => {
      await o.aborted?.(redactor.redact(String((e as Error)?.message ?? e)).split('\n')[0])
      throw e
    })
    .finally(() => core.endGroup())
  for (const r of report.results) {
    const took = r['latency-ms'] === null ? '' : `, ${r['latency-ms']} ms`
    const tries = `${r.attempts} attempt${r.attempts === 1 ? '' : 's'}`
    core.info(
      `${r.ok ? 'pass' : 'FAIL'} ${r.path}: ${r.status ?? 'no answer'}${took}, ${tries}${r.ok ? '' : ` — ${r.error}`}`
    )
  }
  const line = verdict(report.results, report.durationMs)
  const markdown = summaryMarkdown(target, report.results, report.durationMs)
  await core.summary.addRaw(markdown).write()
  const first = report.results.find(r => !r.ok)
  return { report, line, markdown, firstFailure: first ? `${first.path}: ${first.error}` : undefined }
}

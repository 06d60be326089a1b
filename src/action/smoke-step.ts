/**
 * The smoke step shared by smoke-test and ship: runs the checks of the smoke inputs (read, parsed and masked
 * once by src/action/smoke-inputs.ts) inside one deadline, writes the summary. The caller sets its outputs
 * and decides what a failure means.
 */
import * as core from '@actions/core'
import { runSmoke, type SmokeReport } from '../lib/smoke/run.js'
import { coreLog } from './log.js'
import type { SmokeInputs } from './smoke-inputs.js'
import { summaryMarkdown, verdict } from '../lib/smoke/summary.js'
import { validateExposition } from '../lib/prometheus/validate.js'

/** When the step runs and what it tells the caller along the way. */
export interface SmokeStepHooks {
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

/** Runs the checks of `inp` (read, parsed and masked by readSmokeInputs()). */
export async function smokeStep(inp: SmokeInputs, o: SmokeStepHooks = {}): Promise<SmokeStep> {
  const { checks, redactor } = inp
  const target = inp.display
  core.info(
    `smoke-test: ${target}: ${checks.length} check${checks.length === 1 ? '' : 's'}, deadline ${inp.timeout}s, ${inp.requestTimeout}s per request`
  )
  if (inp.insecureTls) core.warning('insecure-tls: TLS certificates are not verified')
  o.begin?.(`checking ${checks.length} endpoint${checks.length === 1 ? '' : 's'} of ${target}`)
  core.startGroup(`attempt log (${checks.length} checks at once)`)
  const report = await runSmoke({
    url: inp.url,
    checks,
    timeoutMs: inp.timeout * 1000,
    requestTimeoutMs: Math.min(inp.requestTimeout, inp.timeout) * 1000,
    headers: inp.headers,
    insecureTls: inp.insecureTls,
    validate: validateExposition,
    redactor,
    secretsKnown: true,
    log: coreLog,
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

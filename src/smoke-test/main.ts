/**
 * smoke-test: reads the inputs, masks every credential form, runs the checks (src/lib/smoke) within the
 * deadline, writes outputs and the job summary, and reports to the commit when asked (src/action/report.ts).
 */
import * as core from '@actions/core'
import { runAction } from '../action/run.js'
import { bool, int, secret, str } from '../action/inputs.js'
import { parseReportMode, Reporter } from '../action/report.js'
import { UserError } from '../lib/errors.js'
import { Redactor, displayUrl } from '../lib/redact.js'
import { parseChecks, parseHeaderLines } from '../lib/smoke/checks.js'
import { parseBaseUrl, runSmoke } from '../lib/smoke/run.js'
import { summaryMarkdown, verdict } from '../lib/smoke/summary.js'
import { validateExposition } from '../lib/prometheus/validate.js'

await runAction(async () => {
  // Secrets first: nothing is logged before every credential form is masked.
  const redactor = new Redactor()
  const url = str('url')
  const headers = parseHeaderLines(secret('headers'))
  const checksText = str('checks')
  const token = secret('github-token')
  const checks = parseChecks(checksText)
  redactor.addUrl(url)
  for (const v of Object.values(headers)) redactor.addHeaderValue(v)
  for (const c of checks) for (const v of Object.values(c.headers)) redactor.addHeaderValue(v)
  for (const form of redactor.forms()) core.setSecret(form) // forms() already holds the base64 and URL-encoded forms

  if (url.trim() === '')
    throw new UserError(
      "Input 'url' is required: the base URL of the deployment, e.g. 'url: https://stage.example.com'."
    )
  parseBaseUrl(url)
  const timeout = int('timeout', 60, { min: 1, max: 3600 })
  const requestTimeout = int('request-timeout', 5, { min: 1, max: 600 })
  const insecureTls = bool('insecure-tls', false)
  const mode = parseReportMode(str('report', 'summary'))
  const name = str('status-context', 'smoke-test')

  const target = displayUrl(url.trim())
  core.info(
    `smoke-test: ${target}: ${checks.length} check${checks.length === 1 ? '' : 's'}, deadline ${timeout}s, ${requestTimeout}s per request`
  )
  if (insecureTls) core.warning('insecure-tls: TLS certificates are not verified')
  const reporter = new Reporter(mode, token, name)
  void reporter.begin(`checking ${checks.length} endpoint${checks.length === 1 ? '' : 's'} of ${target}`)
  core.startGroup(`attempt log (${checks.length} checks at once)`)
  const report = await runSmoke({
    url: url.trim(),
    checks,
    timeoutMs: timeout * 1000,
    requestTimeoutMs: Math.min(requestTimeout, timeout) * 1000,
    headers,
    insecureTls,
    validate: validateExposition,
    redactor,
    log: line => core.info(line),
    startedAt: 0 // performance.now() counts from process start: the deadline includes our own start-up
  })
    .catch(async (e: unknown) => {
      // never leave a pending status / in-progress check run behind
      const why = redactor.redact(String((e as Error)?.message ?? e)).split('\n')[0]
      await reporter.finish({
        passed: false,
        description: `smoke test could not run: ${why}`,
        markdown: why,
        title: 'Smoke test failed'
      })
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
  core.setOutput('passed', String(report.passed))
  core.setOutput('results', JSON.stringify(report.results))
  const markdown = summaryMarkdown(target, report.results, report.durationMs)
  await core.summary.addRaw(markdown).write()
  const reported = await reporter.finish({
    passed: report.passed,
    description: line,
    markdown,
    title: report.passed ? 'Smoke test passed' : 'Smoke test failed'
  })
  if (reported) core.info(`reported ${reported}`)
  if (!report.passed) {
    const first = report.results.find(r => !r.ok)
    throw new UserError(
      `Smoke test failed: ${report.results.filter(r => !r.ok).length} of ${report.results.length} checks failed; ` +
        `first: ${first?.path}: ${first?.error}. See the job summary for every check.`
    )
  }
  core.info(`smoke-test: ${line}`)
})

/**
 * smoke-test: reads the inputs, masks every credential form, runs the checks (src/lib/smoke) within the
 * deadline, writes outputs and the job summary, and reports to the commit when asked (src/action/report.ts).
 */
import * as core from '@actions/core'
import { runAction } from '../action/run.js'
import { bool, int, secret, str } from '../action/inputs.js'
import { parseReportMode, Reporter } from '../action/report.js'
import { smokeStep } from '../action/smoke-step.js'
import { UserError } from '../lib/errors.js'
import { parseHeaderLines } from '../lib/smoke/checks.js'

await runAction(async () => {
  const headers = parseHeaderLines(secret('headers'))
  const url = str('url')
  const checksText = str('checks')
  const token = secret('github-token')
  const timeout = int('timeout', 60, { min: 1, max: 3600 })
  const requestTimeout = int('request-timeout', 5, { min: 1, max: 600 })
  const insecureTls = bool('insecure-tls', false)
  const mode = parseReportMode(str('report', 'summary'))
  const name = str('status-context', 'smoke-test')
  const reporter = new Reporter(mode, token, name)

  const { report, line, markdown } = await smokeStep({
    url,
    urlInput: 'url',
    checksText,
    checksInput: 'checks',
    headers,
    timeout,
    requestTimeout,
    insecureTls,
    startedAt: 0, // performance.now() counts from process start: the deadline includes our own start-up
    begin: description => void reporter.begin(description),
    // never leave a pending status / in-progress check run behind
    aborted: async why => {
      await reporter.finish({
        passed: false,
        description: `smoke test could not run: ${why}`,
        markdown: why,
        title: 'Smoke test failed'
      })
    }
  })
  core.setOutput('passed', String(report.passed))
  core.setOutput('results', JSON.stringify(report.results))
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

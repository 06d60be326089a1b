/**
 * smoke-test: reads the inputs once (./inputs.ts: masked and parsed there), runs the checks (src/lib/smoke)
 * within the deadline, writes outputs and the job summary, and reports to the commit when asked
 * (src/action/report.ts). Launched by ./index.ts; importing this module runs nothing.
 */
import * as core from '@actions/core'
import { Reporter } from '../action/report.js'
import { smokeStep } from '../action/smoke-step.js'
import { UserError } from '../lib/errors.js'
import { getInputs } from './inputs.js'

/**
 * `startedAt`: the performance.now() value the deadline counts from. ./index.ts passes 0, the process start,
 * so the deadline includes our own start-up; in-process callers (tests) default to the call itself.
 */
export async function run(startedAt = performance.now()): Promise<void> {
  const inputs = getInputs()
  const reporter = new Reporter(inputs.report.mode, inputs.report.token, inputs.report.name)

  const { report, line, markdown } = await smokeStep(inputs.smoke, {
    startedAt,
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
}

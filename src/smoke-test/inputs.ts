/** smoke-test's inputs, read once and typed: the smoke group (src/action/smoke-inputs.ts) and the reporting. */
import { secret, str } from '../action/inputs.js'
import { parseReportMode, type ReportMode } from '../action/report.js'
import { readSmokeInputs, SMOKE_TEST_NAMES, type SmokeInputs } from '../action/smoke-inputs.js'

export interface ReportInputs {
  /** `report`: summary | status | check */
  mode: ReportMode
  /** `github-token` (masked) */
  token: string
  /** `status-context`: the status context / check run name */
  name: string
}

export interface SmokeTestInputs {
  smoke: SmokeInputs
  report: ReportInputs
}

export function getInputs(): SmokeTestInputs {
  const token = secret('github-token')
  const smoke = readSmokeInputs(SMOKE_TEST_NAMES)
  const mode = parseReportMode(str('report', 'summary'))
  return { smoke, report: { mode, token, name: str('status-context', 'smoke-test') } }
}

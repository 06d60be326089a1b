/**
 * ship's inputs, read once and typed: the smoke group under ship's names (`smoke-url`, `smoke-checks`,
 * `smoke-timeout`; errors name those) and deploy-ssh's inputs. Everything is checked before the deploy
 * starts, so a bad smoke input never reaches a host.
 */
import { str } from '../action/inputs.js'
import { readDeployInputs, type DeployInputs } from '../action/deploy-step.js'
import { readSmokeInputs, SHIP_SMOKE_NAMES, type SmokeInputs } from '../action/smoke-inputs.js'
import { UserError } from '../lib/errors.js'

export interface ShipInputs {
  smoke: SmokeInputs
  deploy: DeployInputs
}

export function getInputs(): ShipInputs {
  if (str(SHIP_SMOKE_NAMES.url).trim() === '')
    throw new UserError(
      "Input 'smoke-url' is required: the base URL ship checks after the deploy, e.g. 'smoke-url: https://stage.example.com'."
    )
  const smoke = readSmokeInputs(SHIP_SMOKE_NAMES)
  return { smoke, deploy: readDeployInputs() }
}

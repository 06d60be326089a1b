/** rollback's inputs, read once and typed: fleet, registry login, GitHub Deployment, `to`. */
import { str } from '../action/inputs.js'
import {
  readDeploymentInputs,
  readFleetInputs,
  readRegistryInputs,
  runFacts,
  type DeploymentInputs,
  type FleetInputs,
  type RegistryInputs,
  type RunFacts
} from '../action/deploy-inputs.js'

export interface RollbackInputs {
  fleet: FleetInputs
  registry: RegistryInputs
  deployment: DeploymentInputs
  /** `to`: release id or version; undefined: the release before the live one */
  to?: string
  facts: RunFacts
}

export function getInputs(): RollbackInputs {
  const fleet = readFleetInputs()
  const registry = readRegistryInputs()
  const facts = runFacts()
  const deployment = readDeploymentInputs(facts)
  return { fleet, registry, deployment, to: str('to') || undefined, facts }
}

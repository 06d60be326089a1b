/** deploy-ssh's inputs, read once and typed: the deploy group of src/action/deploy-inputs.ts. */
import { readDeployInputs, type DeployInputs } from '../action/deploy-step.js'

export type DeploySshInputs = DeployInputs

export function getInputs(): DeploySshInputs {
  return readDeployInputs()
}

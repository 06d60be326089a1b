/** exec: a command on the hosts of a deploy, on the host or in the current release's service container. */
export { execOnHosts, checkExecOptions, failureReason, resultsJson } from './run.js'
export type { ExecOptions, ExecResult, HostExecResult } from './run.js'
export { hostConnector } from './connect.js'
export { execSummary } from './summary.js'
export { capOutput, HOST_CAP_BYTES } from './output.js'
export { checkCommand, checkService, MAX_COMMAND_BYTES } from './plan.js'

export { deploy, deployHeld, releaseDeploy, type HeldDeploy } from './deploy.js'
export { rollback, rollbackOn, pickTarget } from './rollback.js'
export { summaryTable } from './summary.js'
export type * from './types.js'

export { deploy, putBack } from './deploy.js'
export { rollback, pickTarget } from './rollback.js'
export { summaryTable } from './summary.js'
export type * from './types.js'

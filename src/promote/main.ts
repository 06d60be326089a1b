import * as core from '@actions/core'
import { runAction } from '../action/run.js'

await runAction(async () => {
  core.info('promote: not implemented yet')
})

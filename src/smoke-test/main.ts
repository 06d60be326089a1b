import * as core from '@actions/core'
import { runAction } from '../action/run.js'

await runAction(async () => {
  core.info('smoke-test: not implemented yet')
})

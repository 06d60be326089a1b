import * as core from '@actions/core'
import { isUserError, errorMessage } from '../lib/errors.js'
import { redactSummaries } from './secrets.js'

const POST_STATE = 'shipline-is-post'

/** True when this process is the action's `post` step (main saved the marker state). */
function isPost(): boolean {
  return core.getState(POST_STATE) === 'true'
}

/**
 * Runs an action's main (and optional post) with the suite's error policy: a one-line failure that
 * says what was wrong and how to fix it; details (stack, causes) in a collapsed group.
 */
export async function runAction(main: () => Promise<void>, post?: () => Promise<void>): Promise<void> {
  if (post && isPost()) {
    try {
      await post()
    } catch (e) {
      core.warning(`cleanup failed: ${errorMessage(e)}`)
    }
    return
  }
  if (post) core.saveState(POST_STATE, 'true')
  redactSummaries()
  try {
    await main()
  } catch (e) {
    if (!isUserError(e) && e instanceof Error && e.stack) {
      core.startGroup('error details')
      core.info(e.stack)
      core.endGroup()
    } else if (isUserError(e) && e.details) {
      core.startGroup('error details')
      core.info(e.details)
      core.endGroup()
    }
    core.setFailed(errorMessage(e).split('\n')[0])
  }
}

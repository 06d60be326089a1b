/** The library's Logger (src/lib/log.ts) over @actions/core: the one the actions hand to library code. */
import * as core from '@actions/core'
import type { Logger } from '../lib/log.js'

export const coreLog: Logger = {
  info: m => core.info(m),
  warning: m => core.warning(m),
  notice: m => core.notice(m),
  debug: m => core.debug(m),
  group: (name, fn) => core.group(name, fn)
}

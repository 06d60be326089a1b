/** The action's entry point (the bundle's entry): only launches ./main.ts's run(). */
import { runAction } from '../action/run.js'
import { run } from './main.js'

await runAction(run)

/** The action's entry point (the bundle's entry, main and post step alike): only launches ./main.ts. */
import { runAction } from '../action/run.js'
import { post, run } from './main.js'

await runAction(run, post)

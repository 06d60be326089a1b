/** The action's entry point (the bundle's entry): only launches ./main.ts's run(). */
import { runAction } from '../action/run.js'
import { run } from './main.js'

// 0: performance.now() counts from process start, so the deadline includes the action's own start-up
await runAction(() => run(0))

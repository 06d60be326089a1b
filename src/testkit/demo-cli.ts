import { runDemo } from './demo.js'

const report = await runDemo()
process.exit(report.ok ? 0 : 1)

/**
 * The end-to-end test of the suite: the sandbox demo (real registry with token auth, real sshd as the
 * Compose host, real dockerd and docker-compose, the GitHub API stand-in), every action run from its built
 * bundle the way the runner runs it. It includes ship with a release whose smoke test fails: the previous
 * release must serve afterwards.
 */
import { describe, expect, it } from '@jest/globals'
import { runDemo } from '../../src/testkit/demo.js'

describe('the sandbox demo', () => {
  it('goes from build to a one-click rollback, and ship puts back a release whose smoke test fails', async () => {
    const lines: string[] = []
    const report = await runDemo(line => lines.push(line))
    if (!report.ok) console.log(lines.join('\n'))
    expect(report.error).toBeUndefined()
    expect(report.ok).toBe(true)
    const ship = report.steps.find(s => s.action === 'ship' && s.expect === 'failure')
    expect(ship?.result.outputs['smoke-passed']).toBe('false')
    expect(ship?.result.outputs.status).toBe('rolled-back')
    expect(ship?.notes.join('\n')).toMatch(/version answers v1/)
    // the demo's secrets never show up unmasked in any step's output
    for (const s of report.steps) {
      const masked = new Set(s.result.masks)
      for (const m of masked)
        if (m.length >= 8) expect(s.result.stdout.replace(/^::add-mask::.*$/gm, '')).not.toContain(m)
    }
  }, 600_000)
})

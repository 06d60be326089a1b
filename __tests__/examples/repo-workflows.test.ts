/**
 * The repository's own workflows (.github/workflows/): valid for GitHub's workflow parser, least privilege,
 * bounded in time; the self-test uses the actions from the checkout (`./<action>`) with inputs their
 * action.yml declares; CI runs `.ci/run`; the release tags the version package.json carries.
 */
import { beforeAll, describe, expect, it } from '@jest/globals'
import { join } from 'node:path'
import { loadWorkflowParser, workflowErrors } from '../../src/testkit/workflow-parser.js'
import { ROOT, loadAction, workflowFolder, type Workflow } from './workflow-checks.js'

const { files: FILES, text, load } = workflowFolder(join(ROOT, '.github', 'workflows'))
const steps = (f: string) =>
  Object.values(load(f).jobs).flatMap(
    j => (j.steps ?? []) as { uses?: string; run?: string; with?: Record<string, unknown> }[]
  )

beforeAll(() => {
  loadWorkflowParser()
})

describe('.github/workflows', () => {
  it('has ci, check-dist, a self-test and the release', () => {
    expect(FILES).toEqual(['check-dist.yml', 'ci.yml', 'release.yml', 'self-test.yml'])
  })

  describe.each(FILES)('%s', file => {
    it("passes GitHub's workflow parser without errors", async () => {
      expect(await workflowErrors(file, text(file))).toEqual([])
    })

    it('declares permissions and bounds every job in time', () => {
      const wf = load(file) as Workflow & { permissions?: unknown }
      expect(wf.permissions).toBeDefined()
      for (const job of Object.values(wf.jobs) as { 'timeout-minutes'?: number }[]) {
        expect(job['timeout-minutes']).toBeGreaterThan(0)
      }
    })

    it('uses local actions that exist, with inputs they declare and every required one given', () => {
      for (const s of steps(file).filter(x => x.uses?.startsWith('./'))) {
        const def = loadAction(s.uses!.slice(2).replace(/\/$/, '') || 'ship')
        expect(def).not.toBeNull()
        const given = Object.keys(s.with ?? {})
        expect(given.filter(k => !(k in def!.inputs))).toEqual([])
        const required = Object.entries(def!.inputs)
          .filter(([, v]) => v.required)
          .map(([k]) => k)
        expect(required.filter(k => !given.includes(k))).toEqual([])
      }
    })
  })

  it('ci runs .ci/run', () => {
    expect(steps('ci.yml').some(s => s.run?.includes('bash .ci/run'))).toBe(true)
  })

  it('the self-test uses an action from the checkout', () => {
    expect(steps('self-test.yml').some(s => s.uses?.startsWith('./'))).toBe(true)
  })

  it('the release tags package.json version and moves the major tag', () => {
    const run = steps('release.yml')
      .map(s => s.run ?? '')
      .join('\n')
    expect(run).toContain('require("./package.json").version')
    expect(run).toMatch(/git tag -fa "\$major"/)
    expect(run).toMatch(/git push --force origin "\$major"/)
  })
})

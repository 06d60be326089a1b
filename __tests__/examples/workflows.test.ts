/**
 * The example workflows users copy (examples/workflows/): valid for GitHub's own workflow parser
 * (`@actions/workflow-parser`, bundled on demand by src/testkit/workflow-parser.ts), every `uses:` of ours
 * matches our action.yml files, permissions are least-privilege per job, deploys of one environment share
 * one concurrency group, and docs/workflows.md names every secret and variable they read.
 */
import { beforeAll, describe, expect, it } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadWorkflowParser, workflowErrors } from '../../src/testkit/workflow-parser.js'
import {
  ROOT,
  checkWorkflow,
  environmentGroups,
  loadAction,
  neededPermissions,
  ourAction,
  settingsUsed,
  type Workflow
} from './workflow-checks.js'

const DIR = join(ROOT, 'examples', 'workflows')
const FILES = readdirSync(DIR)
  .filter(f => /\.ya?ml$/.test(f))
  .sort()
const text = (f: string): string => readFileSync(join(DIR, f), 'utf8')
const load = (f: string): Workflow => parse(text(f)) as Workflow

beforeAll(() => {
  loadWorkflowParser() // bundles the parser into build/ on a clean clone
})

describe('example workflows', () => {
  it('cover build, promotion, rollback and the pull request smoke test', () => {
    expect(FILES).toEqual(
      expect.arrayContaining(['build.yml', 'promote-prod.yml', 'rollback.yml', 'pr-smoke.yml'])
    )
  })

  describe.each(FILES)('%s', file => {
    it("passes GitHub's workflow parser without errors", async () => {
      expect(await workflowErrors(file, text(file))).toEqual([])
    })

    it('uses our actions as action.yml declares them, with least privilege and concurrency', () => {
      expect(checkWorkflow(load(file))).toEqual([])
    })

    it('uses at least one of our actions', () => {
      const uses = Object.values(load(file).jobs).flatMap(j => (j.steps ?? []).map(s => s.uses ?? ''))
      expect(uses.some(u => typeof ourAction(u) === 'string')).toBe(true)
    })
  })

  it('deploys and rollbacks of one environment share one concurrency group across workflows', () => {
    const byEnv = new Map<string, Set<string>>()
    for (const f of FILES) {
      for (const { environment, group } of environmentGroups(load(f))) {
        byEnv.set(environment, (byEnv.get(environment) ?? new Set()).add(group))
      }
    }
    expect(Object.fromEntries([...byEnv].map(([e, g]) => [e, [...g]]))).toEqual({
      stage: ['deploy-stage'],
      production: ['deploy-production']
    })
  })

  it('promote production behind the production environment, pinned to the commit SHA', () => {
    const wf = load('promote-prod.yml')
    const deploy = Object.values(wf.jobs).find(j =>
      (j.steps ?? []).some(s => s.uses === 'shipline-dev/shipline@v1')
    )!
    expect(deploy.environment).toMatchObject({ name: 'production' })
    const ship = deploy.steps!.find(s => s.uses === 'shipline-dev/shipline@v1')!
    // every image is the commit tag of the SHA, never :stage or :latest
    const lines = String(ship.with!.images).trim().split('\n')
    expect(lines.length).toBeGreaterThan(0)
    for (const l of lines) expect(l.trim()).toMatch(/:\$\{\{ env\.SHA \}\}$/)
    expect(ship.with!.version).toBe('${{ env.SHA }}')
    const promotes = Object.values(wf.jobs).flatMap(j =>
      (j.steps ?? []).filter(s => s.uses === 'shipline-dev/shipline/promote@v1')
    )
    expect(promotes.length).toBeGreaterThan(0)
    for (const p of promotes) expect(p.with).toMatchObject({ from: '${{ env.SHA }}', 'to-tags': 'prod' })
    expect(wf.env?.SHA).toContain('inputs.sha')
  })

  it('rollback offers an environment choice and an optional version', () => {
    const on = load('rollback.yml').on as {
      workflow_dispatch: { inputs: Record<string, Record<string, unknown>> }
    }
    expect(on.workflow_dispatch.inputs.environment).toMatchObject({
      type: 'choice',
      required: true,
      options: ['stage', 'production']
    })
    expect(on.workflow_dispatch.inputs.version).toMatchObject({ required: false })
  })

  it('the pull request smoke test reports a commit status', () => {
    const job = Object.values(load('pr-smoke.yml').jobs)[0]
    expect(neededPermissions(job)).toMatchObject({ statuses: 2 })
    expect(job.permissions).toMatchObject({ statuses: 'write' })
  })

  it('docs/workflows.md explains every example and every secret and variable it reads', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'workflows.md'), 'utf8')
    for (const f of FILES) {
      const { secrets, vars } = settingsUsed(load(f))
      const missing = [f, ...secrets, ...vars].filter(n => !doc.includes(n))
      expect([f, missing]).toEqual([f, []])
    }
  })
})

describe('the checks catch what they claim to', () => {
  const broken = (edit: (wf: Workflow) => void): string[] => {
    const wf = load('build.yml')
    edit(wf)
    return checkWorkflow(wf)
  }
  const ship = (wf: Workflow) => wf.jobs['deploy-stage'].steps!.find(s => s.id === 'ship')!

  it("GitHub's parser reports a broken workflow", async () => {
    const errors = await workflowErrors(
      'broken.yml',
      text('build.yml').replace('packages: write', 'packages: writ')
    )
    expect(errors.join('\n')).toMatch(/writ/)
  })

  it('an input that is not declared, a missing required input, an inline secret', () => {
    const problems = broken(wf => {
      const w = ship(wf).with!
      w['smoke-path'] = '/health'
      delete w.path
      w['ssh-key'] = '-----BEGIN OPENSSH PRIVATE KEY-----'
    })
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining("'smoke-path' is not an input of ship"),
        expect.stringContaining("required input 'path' of ship is not given"),
        expect.stringContaining("'ssh-key' carries a secret")
      ])
    )
  })

  it('an output that is not declared, a missing step, a job output nobody sets', () => {
    const problems = broken(wf => {
      wf.jobs.build.outputs!.api = '${{ steps.api.outputs.reference }}'
      wf.jobs['deploy-stage'].steps!.push({
        run: 'true',
        env: { X: '${{ steps.nope.outputs.x }}', Y: '${{ needs.build.outputs.db }}' }
      })
    })
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining("'reference' is not an output of build-push"),
        expect.stringContaining('steps.nope does not exist'),
        expect.stringContaining("job build has no output 'db'")
      ])
    )
  })

  it('missing or broad permissions, a deploy without concurrency, a wrong ref', () => {
    const problems = broken(wf => {
      delete wf.jobs.build.permissions
      wf.jobs['deploy-stage'].permissions = { contents: 'read', packages: 'write' }
      delete wf.jobs['deploy-stage'].concurrency
      wf.jobs.build.steps![1].uses = 'shipline-dev/shipline/build-push@main'
    })
    expect(problems).toEqual(
      expect.arrayContaining([
        'job build: no explicit permissions mapping',
        'job deploy-stage: packages: write is more than its steps need',
        'job deploy-stage: deploys, promotes or rolls back without a concurrency group',
        expect.stringContaining(
          "'shipline-dev/shipline/build-push@main': write shipline-dev/shipline[/<action>]@v1"
        )
      ])
    )
  })

  it('every action of ours the examples use exists here', () => {
    for (const a of ['ship', 'build-push', 'promote', 'deploy-ssh', 'smoke-test', 'rollback'])
      expect(loadAction(a)).not.toBeNull()
    expect(loadAction('deploy-kube')).toBeNull()
  })
})

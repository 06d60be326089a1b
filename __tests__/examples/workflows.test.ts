/**
 * The example workflows users copy (examples/workflows/): valid for GitHub's own workflow parser
 * (`@actions/workflow-parser`, bundled on demand by src/testkit/workflow-parser.ts), every `uses:` of ours
 * matches our action.yml files, permissions are least-privilege per job, deploys of one environment share
 * one concurrency group, their expressions evaluate (GitHub's evaluator) to what the actions accept, and
 * docs/workflows.md names every secret and variable they read. The yaml blocks of the READMEs and docs get
 * the same `uses:` checks.
 */
import { beforeAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ACTIONS } from '../../scripts/actions.mjs'
import { parseKeyValues } from '../../src/lib/parse.js'
import {
  actionErrors,
  evaluate,
  loadWorkflowParser,
  workflowErrors
} from '../../src/testkit/workflow-parser.js'
import {
  ROOT,
  checkSnippet,
  checkWorkflow,
  environmentGroups,
  loadAction,
  neededPermissions,
  ourAction,
  settingsUsed,
  type Step,
  type Workflow,
  workflowFolder
} from './workflow-checks.js'

const { files: FILES, text, load } = workflowFolder(join(ROOT, 'examples', 'workflows'))

/** Runs a step's script the way the runner's default shell does (`bash -e`), with a GITHUB_OUTPUT file. */
function runScript(
  script: string,
  env: Record<string, string>
): { code: number | null; stdout: string; outputs: string } {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-step-'))
  try {
    const out = join(dir, 'output')
    const r = spawnSync('bash', ['-e', '-c', script], {
      env: { PATH: process.env.PATH, ...env, GITHUB_OUTPUT: out },
      encoding: 'utf8'
    })
    let outputs = ''
    try {
      outputs = readFileSync(out, 'utf8')
    } catch {
      // nothing written
    }
    return { code: r.status, stdout: r.stdout, outputs }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

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
      // one placeholder owner everywhere (issue 14): the README says to replace OWNER with yours
      expect(uses.filter(u => /\/shipline\b/.test(u) && !u.startsWith('OWNER/'))).toEqual([])
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
      (j.steps ?? []).some(s => s.uses === 'OWNER/shipline@v1')
    )!
    expect(deploy.environment).toMatchObject({ name: 'production' })
    const ship = deploy.steps!.find(s => s.uses === 'OWNER/shipline@v1')!
    // every image is the commit tag of the SHA, never :stage or :latest
    const lines = String(ship.with!.images).trim().split('\n')
    expect(lines.length).toBeGreaterThan(0)
    for (const l of lines) expect(l.trim()).toMatch(/:\$\{\{ env\.SHA \}\}$/)
    expect(ship.with!.version).toBe('${{ env.SHA }}')
    const promotes = Object.values(wf.jobs).flatMap(j =>
      (j.steps ?? []).filter(s => s.uses === 'OWNER/shipline/promote@v1')
    )
    expect(promotes.length).toBeGreaterThan(0)
    for (const p of promotes) expect(p.with).toMatchObject({ from: '${{ env.SHA }}', 'to-tags': 'prod' })
    expect(wf.env?.SHA).toBe('${{ inputs.sha }}')
    // the SHA is checked before anyone is asked to approve
    expect([deploy.needs].flat()).toContain('check')
    expect(wf.jobs.check.environment).toBeUndefined()
  })

  it('promote-prod refuses anything but a full commit SHA and names the image in lowercase', () => {
    const step = load('promote-prod.yml').jobs.check.steps!.find(s => s.id === 'resolve')!
    const bad = runScript(step.run!, { SHA: 'stage', GITHUB_REPOSITORY: 'Acme/Shop' })
    expect(bad.code).toBe(1)
    expect(bad.stdout).toContain("::error::sha must be a full 40-character lowercase commit SHA, got 'stage'")
    expect(runScript(step.run!, { SHA: 'a'.repeat(12), GITHUB_REPOSITORY: 'Acme/Shop' }).code).toBe(1)
    const good = runScript(step.run!, { SHA: 'a1b2c3d4'.repeat(5), GITHUB_REPOSITORY: 'Acme/Shop' })
    expect(good).toMatchObject({ code: 0, outputs: 'image-base=ghcr.io/acme/shop\n' })
  })

  it('every run: script is valid bash', () => {
    for (const f of FILES) {
      for (const [jobId, job] of Object.entries(load(f).jobs)) {
        for (const s of job.steps ?? []) {
          if (!s.run) continue
          const r = spawnSync('bash', ['-n'], { input: s.run, encoding: 'utf8' })
          expect([f, jobId, s.run, r.stderr]).toEqual([f, jobId, s.run, ''])
        }
      }
    }
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

describe("the examples' expressions, evaluated by GitHub's evaluator for a run", () => {
  const SHA = '0123456789abcdef0123456789abcdef01234567'
  const DIGEST = 'sha256:' + 'ab'.repeat(32)
  const base = {
    github: { repository: 'Acme/Shop', sha: SHA, actor: 'octocat', token: 'ghs_job', ref: 'refs/heads/main' },
    secrets: { GITHUB_TOKEN: 'ghs_job', SSH_KEY: 'ssh-key', KNOWN_HOSTS: 'known', ENV_FILE: 'DB_URL=x' },
    vars: { DEPLOY_HOSTS: 'deploy@app.example.com', APP_URL: 'https://app.example.com' }
  }
  /** A step's `with:` as the action receives it. */
  const withOf = (step: Step, context: Record<string, unknown>): Record<string, string> =>
    Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, evaluate(String(v), context)]))
  /** Job outputs from its steps' outputs. */
  const jobOutputs = (wf: Workflow, job: string, steps: Record<string, Record<string, string>>) =>
    Object.fromEntries(
      Object.entries(wf.jobs[job].outputs ?? {}).map(([k, v]) => [
        k,
        evaluate(v, {
          ...base,
          steps: Object.fromEntries(Object.entries(steps).map(([id, o]) => [id, { outputs: o }]))
        })
      ])
    )
  const step = (wf: Workflow, job: string, id: string): Step => wf.jobs[job].steps!.find(s => s.id === id)!

  it('build.yml deploys to stage exactly the digests the build job pushed', () => {
    const wf = load('build.yml')
    const build = jobOutputs(wf, 'build', {
      api: { ref: `ghcr.io/acme/shop/api@${DIGEST}` },
      worker: { ref: `ghcr.io/acme/shop/worker@${DIGEST}` }
    })
    const w = withOf(step(wf, 'deploy-stage', 'ship'), { ...base, needs: { build: { outputs: build } } })
    expect(Object.fromEntries(parseKeyValues('images', w.images))).toEqual({
      api: `ghcr.io/acme/shop/api@${DIGEST}`,
      worker: `ghcr.io/acme/shop/worker@${DIGEST}`
    })
    expect(w).toMatchObject({ version: SHA, 'registry-password': 'ghs_job', 'env-file': 'DB_URL=x' })
  })

  it('promote-prod.yml deploys and tags the images of the SHA given, checked by its first job', () => {
    const wf = load('promote-prod.yml')
    const inputs = { sha: SHA }
    const env = { SHA: evaluate(String(wf.env!.SHA), { ...base, inputs }) }
    const ran = runScript(step(wf, 'check', 'resolve').run!, { SHA: env.SHA, GITHUB_REPOSITORY: 'Acme/Shop' })
    expect(ran.code).toBe(0)
    const check = jobOutputs(wf, 'check', {
      resolve: Object.fromEntries(parseKeyValues('GITHUB_OUTPUT', ran.outputs))
    })
    const context = { ...base, inputs, env, needs: { check: { outputs: check } } }
    const w = withOf(step(wf, 'deploy-production', 'ship'), context)
    expect(Object.fromEntries(parseKeyValues('images', w.images))).toEqual({
      api: `ghcr.io/acme/shop/api:${SHA}`,
      worker: `ghcr.io/acme/shop/worker:${SHA}`
    })
    expect(w.version).toBe(SHA)
    expect(withOf(step(wf, 'promote', 'api'), context)).toEqual({
      image: 'ghcr.io/acme/shop/api',
      from: SHA,
      'to-tags': 'prod'
    })
  })

  it.each([
    ['production', 'prod'],
    ['stage', 'stage']
  ])('rollback.yml for %s points :%s back at the version now live', (environment, tag) => {
    const wf = load('rollback.yml')
    const inputs = { environment, version: '' }
    const env = { TAG: evaluate(String(wf.jobs.retag.env!.TAG), { ...base, inputs }) }
    expect(env.TAG).toBe(tag)
    const rollback = jobOutputs(wf, 'rollback', { rollback: { 'to-version': SHA } })
    const retag = wf.jobs.retag.steps!.filter(s => s.uses?.endsWith('/promote@v1'))
    for (const s of retag) {
      const w = withOf(s, {
        ...base,
        inputs,
        env,
        needs: { rollback: { outputs: rollback } },
        steps: { image: { outputs: { base: 'ghcr.io/acme/shop' } } }
      })
      expect(w).toMatchObject({ from: SHA, 'to-tags': tag })
    }
    expect(withOf(step(wf, 'rollback', 'rollback'), { ...base, inputs }).to).toBe('')
  })

  it.each([
    [false, 'status'],
    [true, 'summary']
  ])('pr-smoke.yml on a pull request from a fork=%s reports %s', (fork, report) => {
    const wf = load('pr-smoke.yml')
    const github = { ...base.github, event: { pull_request: { number: 7, head: { repo: { fork } } } } }
    const w = withOf(step(wf, 'smoke', 'smoke'), { ...base, github })
    expect(w.report).toBe(report)
  })
})

describe('YAML examples in the READMEs and docs', () => {
  /** README.md, every <folder>/README.md and docs/*.md that hold a yaml block */
  const docs = [
    'README.md',
    ...readdirSync(ROOT, { withFileTypes: true })
      .filter(
        d => d.isDirectory() && !['node_modules', 'dist', 'build'].includes(d.name) && !d.name.startsWith('.')
      )
      .map(d => `${d.name}/README.md`),
    ...readdirSync(join(ROOT, 'docs')).map(f => `docs/${f}`)
  ].filter(f => f.endsWith('.md') && existsSync(join(ROOT, f)))
  const blocks = docs.flatMap(f =>
    [...readFileSync(join(ROOT, f), 'utf8').matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].map((m, i) => ({
      where: `${f} yaml block ${i + 1}`,
      text: m[1]
    }))
  )

  it.each(blocks.length ? blocks : [{ where: 'none yet', text: '' }])(
    '$where uses our actions as action.yml declares them',
    async ({ where, text }) => {
      if (!text.includes('/shipline')) return
      let doc: unknown
      try {
        doc = parse(text)
      } catch (e) {
        throw new Error(`${where} is not YAML: ${String(e)}`)
      }
      const problems = checkSnippet(doc)
      const isWorkflow = typeof doc === 'object' && doc !== null && 'jobs' in doc && 'on' in doc
      if (isWorkflow) problems.push(...(await workflowErrors(where, text)))
      expect([where, problems]).toEqual([where, []])
    }
  )
})

describe('the checks catch what they claim to', () => {
  /** Breaks a copy of build.yml and expects each fragment in some problem the checks report. */
  const expectProblems = (edit: (wf: Workflow) => void, fragments: string[]): void => {
    const wf = load('build.yml')
    edit(wf)
    const problems = checkWorkflow(wf)
    for (const f of fragments)
      expect([f, problems.filter(p => p.includes(f))]).toEqual([f, [expect.any(String)]])
  }
  const ship = (wf: Workflow): Step => wf.jobs['deploy-stage'].steps!.find(s => s.id === 'ship')!

  it("GitHub's parser reports a broken workflow", async () => {
    const errors = await workflowErrors(
      'broken.yml',
      text('build.yml').replace('packages: write', 'packages: writ')
    )
    expect(errors.join('\n')).toMatch(/Unexpected value 'writ'/)
  })

  it('an input that is not declared, a missing required input, an inline secret, a bad boolean', () => {
    expectProblems(
      wf => {
        const w = ship(wf).with!
        w['smoke-path'] = '/health'
        delete w.path
        w['ssh-key'] = '-----BEGIN OPENSSH PRIVATE KEY-----'
        w['auto-rollback'] = 'yes'
        w['smoke-checks'] = '- url: /health'
      },
      [
        "'smoke-path' is not an input of ship",
        "required input 'path' of ship is not given",
        "'ssh-key' carries a secret",
        "Input 'auto-rollback' must be true or false",
        "Input 'smoke-checks'"
      ]
    )
  })

  it('an output that is not declared, a missing step, a job output nobody sets, an unset env', () => {
    expectProblems(
      wf => {
        wf.jobs.build.outputs!.api = '${{ steps.api.outputs.reference }}'
        wf.jobs['deploy-stage'].steps!.push({
          run: 'true',
          env: { X: '${{ steps.nope.outputs.x }}', Y: '${{ needs.build.outputs.db }}', Z: '${{ env.NOPE }}' }
        })
      },
      [
        "'reference' is not an output of build-push",
        'steps.nope does not exist',
        "job build has no output 'db'",
        'env.NOPE is not set'
      ]
    )
  })

  it('missing or broad permissions, a deploy without concurrency, a wrong ref, secrets outside an environment', () => {
    expectProblems(
      wf => {
        delete wf.jobs.build.permissions
        wf.jobs['deploy-stage'].permissions = { contents: 'read', packages: 'write' }
        delete wf.jobs['deploy-stage'].concurrency
        delete wf.jobs['deploy-stage'].environment
        wf.jobs.build.steps![1].uses = 'OWNER/shipline/build-push@main'
      },
      [
        'job build: no explicit permissions mapping',
        'job deploy-stage: packages: write is more than its steps need',
        'job deploy-stage: deploys, promotes or rolls back without a concurrency group',
        'job deploy-stage: uses secrets outside a GitHub environment',
        "'OWNER/shipline/build-push@main': write OWNER/shipline[/<action>]@v1"
      ]
    )
  })

  it('an expression expanded inside a run: script', () => {
    expectProblems(
      wf => void wf.jobs['deploy-stage'].steps!.push({ run: 'echo ${{ github.event.head_commit.message }}' }),
      ['an expression inside run:']
    )
  })

  it('a doc snippet with an unknown input, a missing required one, a literal header secret', () => {
    const snippet = parse(
      [
        '- uses: OWNER/shipline/smoke-test@v1',
        '  with:',
        '    urll: https://stage.example.com',
        '    headers: |',
        '      Authorization: Bearer abc123',
        '- uses: OWNER/shipline/smoke-test@v1',
        '  with:',
        '    url: https://stage.example.com',
        '    headers: |',
        '      Authorization: Bearer ${{ secrets.STAGE_TOKEN }}'
      ].join('\n')
    )
    const problems = checkSnippet(snippet)
    expect(problems).toEqual([
      expect.stringContaining("'urll' is not an input of smoke-test"),
      expect.stringContaining("'headers' carries a secret"),
      expect.stringContaining("required input 'url' of smoke-test is not given")
    ])
  })
})

describe('our action.yml files, as the examples use them', () => {
  it.each([...ACTIONS])("%s passes GitHub's action parser and declares what the checks read", name => {
    const file = join(ROOT, name === 'ship' ? '.' : name, 'action.yml')
    const { errors, action } = actionErrors(file, readFileSync(file, 'utf8'))
    expect(errors).toEqual([])
    const ours = loadAction(name)!
    expect((action?.inputs ?? []).map(i => i.id).sort()).toEqual(Object.keys(ours.inputs).sort())
    expect((action?.outputs ?? []).map(o => o.id).sort()).toEqual(Object.keys(ours.outputs).sort())
    const required = (action?.inputs ?? []).filter(i => i.required).map(i => i.id)
    expect(required.sort()).toEqual(
      Object.entries(ours.inputs)
        .filter(([, d]) => d.required)
        .map(([k]) => k)
        .sort()
    )
  })

  it('an action that does not exist is reported', () => {
    expect(loadAction('deploy-kube')).toBeNull()
  })
})

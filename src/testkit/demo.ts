/**
 * The whole shipline story on the local sandbox, each action run from its built bundle exactly as the
 * Actions runner runs it (src/testkit/runner.ts): build-push (SHA + stage) → deploy stage → smoke →
 * promote to prod → ship prod → a broken release rolled back by itself → a one-click rollback → a release
 * whose smoke test fails, put back by ship.
 * `npm run demo` prints the report; the end-to-end test runs the same function.
 */
import { randomBytes } from 'node:crypto'
import { runActionBundle, type RunResult } from './runner.js'
import { startSandbox, type Sandbox } from './sandbox.js'

export interface DemoStep {
  title: string
  action: string
  expect: 'success' | 'failure'
  ok: boolean
  result: RunResult
  notes: string[]
}

export interface DemoReport {
  ok: boolean
  steps: DemoStep[]
  error?: string
}

const sha = (): string => randomBytes(20).toString('hex')

async function version(url: string): Promise<string> {
  try {
    const r = await fetch(`${url}/version`, { signal: AbortSignal.timeout(3000) })
    return r.ok ? (await r.text()).trim() : `HTTP ${r.status}`
  } catch (e) {
    return `unreachable (${(e as Error).message})`
  }
}

function indent(text: string, prefix = '    '): string {
  return text
    .trimEnd()
    .split('\n')
    .map(l => prefix + l)
    .join('\n')
}

export function formatStep(step: DemoStep, index: number): string {
  const r = step.result
  const mark = step.ok ? 'ok  ' : 'FAIL'
  const lines = [
    `[${mark}] ${index + 1}. ${step.title}  (${step.action}, expected ${step.expect}, exit ${r.exitCode})`
  ]
  const outputs = Object.entries(r.outputs)
  if (outputs.length) {
    lines.push('  outputs:')
    for (const [k, v] of outputs) lines.push(`    ${k}: ${v.includes('\n') ? '\n' + indent(v, '      ') : v}`)
  }
  for (const a of r.annotations) lines.push(`  ${a.level}: ${a.message}`)
  for (const n of step.notes) lines.push(`  check: ${n}`)
  if (r.summary.trim()) lines.push('  summary:', indent(r.summary.replace(/<[^>]+>/g, ''), '    │ '))
  if (!step.ok) {
    lines.push('  log (last lines):', indent(r.stdout.split('\n').slice(-40).join('\n'), '    '))
    if (r.stderr.trim()) lines.push('  stderr:', indent(r.stderr.split('\n').slice(-20).join('\n'), '    '))
  }
  return lines.join('\n')
}

export async function runDemo(log: (line: string) => void = console.log): Promise<DemoReport> {
  const steps: DemoStep[] = []
  let sandbox: Sandbox | undefined
  const report: DemoReport = { ok: false, steps }
  try {
    log('setting up the sandbox: registry (token auth), sshd (compose host), GitHub API stand-in …')
    sandbox = await startSandbox()
    const sb = sandbox
    log(
      `  registry ${sb.registry.url} (token issuer ${sb.registry.tokenUrl}), sshd 127.0.0.1:${sb.sshd.port}, GitHub API ${sb.github.url}`
    )
    log(`  stage → ${sb.envs.stage.url}, prod → ${sb.envs.prod.url}`)
    const registryInputs = {
      'registry-username': sb.registry.username,
      'registry-password': sb.registry.password
    }
    const github = { repository: 'acme/shop', actor: 'octocat', apiUrl: sb.github.url }
    const step = async (
      title: string,
      action: string,
      inputs: Record<string, string>,
      expect: 'success' | 'failure',
      commit: string,
      verify?: (r: RunResult) => Promise<string[]>
    ): Promise<RunResult> => {
      log(`\n▶ ${title}`)
      const result = await runActionBundle({
        action,
        inputs,
        github: { ...github, sha: commit },
        cwd: sb.workspace,
        timeoutMs: 300_000
      })
      const exitOk = expect === 'success' ? result.exitCode === 0 : result.exitCode !== 0
      const notes: string[] = []
      let ok = exitOk && (result.post?.exitCode ?? 0) === 0
      if (verify) {
        try {
          notes.push(...(await verify(result)))
        } catch (e) {
          ok = false
          notes.push(`FAILED: ${(e as Error).message}`)
        }
      }
      const s: DemoStep = { title, action, expect, ok, result, notes }
      steps.push(s)
      log(formatStep(s, steps.length - 1))
      if (!ok) throw new Error(`step ${steps.length} (${title}) did not go as expected`)
      return result
    }
    const expectVersion = async (url: string, want: string): Promise<string[]> => {
      const got = await version(url)
      if (got !== want) throw new Error(`${url}/version answers '${got}', expected '${want}'`)
      return [`${url}/version answers ${got}`]
    }
    const deployInputs = (env: 'stage' | 'prod', images: string, v: string): Record<string, string> => ({
      ...sb.sshInputs(),
      path: sb.envs[env].path,
      'compose-file': sb.composeFile,
      'env-file': sb.envs[env].envFile,
      images,
      version: v,
      ...registryInputs,
      registry: sb.registry.host,
      'health-timeout': '60',
      environment: env === 'prod' ? 'production' : 'stage',
      'environment-url': sb.envs[env].url
    })

    // 1. build once: SHA tag + stage
    const v1 = sha()
    sb.writeApp('v1')
    const built = await step(
      'build-push v1: tags :<sha> and :stage',
      'build-push',
      { context: 'app', image: sb.image, ...registryInputs },
      'success',
      v1
    )
    const digest1 = built.outputs.digest
    // 2. deploy stage
    await step(
      'deploy-ssh: stage runs the SHA-tagged image, pinned by digest',
      'deploy-ssh',
      deployInputs('stage', `app=${sb.image}:${v1}`, v1),
      'success',
      v1,
      async r => [
        ...(r.outputs.status === 'deployed' ? ['status deployed'] : []),
        ...(await expectVersion(sb.envs.stage.url, 'v1'))
      ]
    )
    // 3. smoke stage
    await step(
      'smoke-test: stage answers /health, /readyz and valid /metrics',
      'smoke-test',
      { url: sb.envs.stage.url },
      'success',
      v1
    )
    // 4. promote the very same digest to prod
    await step(
      'promote: :<sha> → :prod, registry-side, same digest',
      'promote',
      { image: sb.image, from: v1, 'to-tags': 'prod', ...registryInputs },
      'success',
      v1,
      async r => {
        if (r.outputs.digest !== digest1)
          throw new Error(`promoted digest ${r.outputs.digest} is not the built ${digest1}`)
        return [`prod → ${r.outputs.digest} (the digest build-push pushed)`]
      }
    )
    // 5. ship prod: deploy + smoke
    await step(
      'ship: prod deploys :prod (pinned to the digest) and passes its smoke test',
      'ship',
      { ...deployInputs('prod', `app=${sb.image}:prod`, v1), 'smoke-url': sb.envs.prod.url },
      'success',
      v1,
      () => expectVersion(sb.envs.prod.url, 'v1')
    )
    // 6. a second good release
    const v2 = sha()
    sb.writeApp('v2')
    await step(
      'build-push v2',
      'build-push',
      { context: 'app', image: sb.image, ...registryInputs },
      'success',
      v2
    )
    // 6a. a migration that fails (runbook 003's `alembic upgrade head`, here a script that stops): the
    // release command runs before any container is replaced, so nothing live changes
    await step(
      'deploy-ssh: stage v2 with a bad migration: the release command fails, nothing live changes, v1 still serves',
      'deploy-ssh',
      {
        ...deployInputs('stage', `app=${sb.image}:${v2}`, v2),
        'release-command': `app=sh -c 'echo "migrating to $APP_VERSION"; echo "ERROR: column orders.total already exists" >&2; exit 1'`
      },
      'failure',
      v2,
      async r => {
        if (r.outputs.status !== 'failed') throw new Error(`status is '${r.outputs.status}', expected failed`)
        if (!/release command .* failed \(exit 1\).*nothing live changed/.test(r.stdout))
          throw new Error('the failure does not say the release command failed and nothing live changed')
        return [
          'status failed before any container changed',
          ...(await expectVersion(sb.envs.stage.url, 'v1'))
        ]
      }
    )
    // 6b. the same release with its migration fixed, in one-off container of the new image, then the switch
    await step(
      'ship: prod moves to v2, its release command (the migration) first',
      'ship',
      {
        ...deployInputs('prod', `app=${sb.image}:${v2}`, v2),
        'smoke-url': sb.envs.prod.url,
        'release-command': `app=sh -c 'echo "migrating to $APP_VERSION"; echo "schema at $APP_VERSION"'`
      },
      'success',
      v2,
      async r => {
        if (!r.summary.includes('release-command'))
          throw new Error('the summary does not show the release command')
        return ['release command ran (in the summary)', ...(await expectVersion(sb.envs.prod.url, 'v2'))]
      }
    )
    // 7. a broken release: its healthcheck never passes; deploy-ssh puts v2 back by itself
    const v3 = sha()
    sb.writeApp('v3-broken', false)
    await step(
      'build-push v3 (broken: no /health)',
      'build-push',
      { context: 'app', image: sb.image, ...registryInputs },
      'success',
      v3
    )
    await step(
      'deploy-ssh: broken v3 never turns healthy and is rolled back by itself',
      'deploy-ssh',
      { ...deployInputs('prod', `app=${sb.image}:${v3}`, v3), 'health-timeout': '15' },
      'failure',
      v3,
      async r => {
        if (r.outputs.status !== 'rolled-back')
          throw new Error(`status is '${r.outputs.status}', expected rolled-back`)
        return ['status rolled-back', ...(await expectVersion(sb.envs.prod.url, 'v2'))]
      }
    )
    // 8. one click back: the release before the current one
    await step(
      'rollback (workflow_dispatch): prod goes back to the release before the current one',
      'rollback',
      {
        ...sb.sshInputs(),
        path: sb.envs.prod.path,
        ...registryInputs,
        registry: sb.registry.host,
        environment: 'production'
      },
      'success',
      v2,
      async r => {
        if (r.outputs['to-version'] !== v1)
          throw new Error(`to-version is '${r.outputs['to-version']}', expected ${v1}`)
        return [
          `from ${r.outputs['from-version']} to ${r.outputs['to-version']}`,
          ...(await expectVersion(sb.envs.prod.url, 'v1'))
        ]
      }
    )
    // 9. ship a release that deploys healthy but fails its smoke test: the previous release comes back
    const v4 = sha()
    sb.writeApp('v4')
    await step(
      'build-push v4',
      'build-push',
      { context: 'app', image: sb.image, ...registryInputs },
      'success',
      v4
    )
    await step(
      'ship: v4 turns healthy but fails its smoke test (a metric is missing); v1 is put back',
      'ship',
      {
        ...deployInputs('prod', `app=${sb.image}:${v4}`, v4),
        'smoke-url': sb.envs.prod.url,
        'smoke-checks':
          '- path: /health\n- path: /metrics\n  format: prometheus\n  require-metrics: [checkout_orders_total]\n',
        'smoke-timeout': '5'
      },
      'failure',
      v4,
      async r => {
        if (r.outputs['smoke-passed'] !== 'false')
          throw new Error(`smoke-passed is '${r.outputs['smoke-passed']}'`)
        if (r.outputs.status !== 'rolled-back')
          throw new Error(`status is '${r.outputs.status}', expected rolled-back`)
        return ['smoke-passed false, status rolled-back', ...(await expectVersion(sb.envs.prod.url, 'v1'))]
      }
    )
    // 10. the release ship gave up is never a rollback target: one click goes to v2, not to v4
    await step(
      'rollback again: the release before v1 is v2 (v4, given up by ship, is skipped)',
      'rollback',
      { ...sb.sshInputs(), path: sb.envs.prod.path, ...registryInputs, registry: sb.registry.host },
      'success',
      v4,
      async r => {
        if (r.outputs['to-version'] !== v2)
          throw new Error(`to-version is '${r.outputs['to-version']}', expected ${v2}`)
        return [`to ${r.outputs['to-version']}`, ...(await expectVersion(sb.envs.prod.url, 'v2'))]
      }
    )
    const deployments = sb.github.deployments.length
    log(
      `\nGitHub Deployments recorded on the stand-in: ${deployments}, statuses: ${sb.github.deploymentStatuses.length}`
    )
    report.ok = true
  } catch (e) {
    report.error = (e as Error).message
  } finally {
    if (sandbox) await sandbox.stop()
  }
  log(report.ok ? `\nall good: ${steps.length} steps went as expected` : `\nFAILED: ${report.error}`)
  return report
}

/**
 * dist/deploy-ssh and dist/rollback run the way the Actions runner runs them (runActionBundle), against a
 * real sshd, dockerd + docker-compose v1, a registry with htpasswd auth (the images are not on the host:
 * it must log in and pull), and the local GitHub API stand-in for Deployments. While they run, every
 * process's argv is watched for the secrets; afterwards logs and the files left behind are searched.
 * Also: a deploy killed mid-way (SIGKILL of the action's process) leaves the old release serving, the
 * lock free and the next deploy working. Needs built bundles (`npm run build`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { start as startGitHub, type GitHubApi } from '../../src/testkit/github-api.js'
import { buildAppImage, removeImages, removeRepository } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { dockerLogin, startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import {
  loadActionYml,
  node24,
  REPO_ROOT,
  runActionBundle,
  type RunResult
} from '../../src/testkit/runner.js'
import { startSshd, type Sshd } from '../../src/testkit/sshd.js'
import {
  argvWatch,
  eventuallyVersion,
  filesHolding,
  liveVersion,
  readLedger,
  workspace,
  type Workspace
} from './helpers.js'

const SHA = 'feedface0123456789abcdef0123456789abcdef'
const ENV_SECRET = `s3cret-${Math.random().toString(36).slice(2)}-value`

let reg: TestRegistry
let sshd: Sshd
let gh: GitHubApi
let ws: Workspace
let repo: string
let path: string
const refs: string[] = []

function dropLocal(tag: string): void {
  const digests = execFileSync(
    'docker',
    ['image', 'inspect', '--format', '{{join .RepoDigests "\\n"}}', tag],
    { encoding: 'utf8' }
  )
    .split('\n')
    .filter(Boolean)
  removeImages(tag, ...digests)
}

beforeAll(async () => {
  ;[reg, sshd, gh] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startSshd(), startGitHub()])
  ws = workspace()
  path = ws.path()
  repo = `${reg.host}/${uniqueName('bundle')}/app`
  const login = dockerLogin(reg)
  try {
    for (const [v, healthy] of [
      ['v1', true],
      ['v2', true],
      ['bad', false]
    ] as const) {
      const tag = `${repo}:${v}`
      buildAppImage({ tag, version: v, healthy })
      execFileSync('docker', ['--config', login.config, 'push', '-q', tag], { stdio: 'ignore' })
      refs.push(tag)
      dropLocal(tag) // the host has to pull it, logged in
    }
  } finally {
    login.remove()
  }
}, 120_000)

afterAll(async () => {
  ws?.cleanup()
  removeRepository(repo)
  await Promise.all([reg?.stop(), sshd?.stop(), gh?.stop()])
})

function sshInputs(): Record<string, string> {
  return {
    hosts: `${sshd.host}:${sshd.port}`,
    'ssh-key': sshd.clientKey.privateKey,
    'known-hosts': sshd.knownHostsLine,
    path
  }
}

function deployInputs(version: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...sshInputs(),
    'compose-file': 'docker-compose.yml',
    images: `web=${repo}:${version}`,
    version,
    'env-file': `APP_SECRET=${ENV_SECRET}\n`,
    registry: reg.host,
    'registry-username': reg.username,
    'registry-password': reg.password,
    'health-timeout': '60',
    ...extra
  }
}

const secrets = (): string[] => [
  ENV_SECRET,
  reg.password,
  Buffer.from(`${reg.username}:${reg.password}`).toString('base64'),
  sshd.clientKey.privateKey.split('\n')[2]
]

function runnerGitHub() {
  return { apiUrl: gh.url, sha: SHA, repository: 'acme/shop', runId: '4242' }
}

describe('dist/deploy-ssh and dist/rollback as the runner runs them', () => {
  let first: RunResult

  it('deploys, logs in on the host for the pull, records a GitHub Deployment, and no secret shows anywhere', async () => {
    const watch = argvWatch(secrets())
    first = await runActionBundle({
      action: 'deploy-ssh',
      inputs: deployInputs('v1', {
        environment: 'staging',
        'environment-url': 'https://staging.example.com'
      }),
      github: runnerGitHub(),
      cwd: ws.dir
    })
    const hits = watch.stop()
    expect(first.stderr + first.stdout).not.toMatch(/::error::/)
    expect(first.exitCode).toBe(0)
    expect(first.outputs).toMatchObject({ version: 'v1', 'previous-version': '', status: 'deployed' })
    expect(first.outputs['release-id']).toMatch(/^\d{8}T\d{9}Z-v1$/)
    expect(JSON.parse(first.outputs.images)).toEqual({ web: expect.stringMatching(/@sha256:[a-f0-9]{64}$/) })
    expect(first.summary).toContain('| deployed |')
    expect(first.post).toBeUndefined() // deploy-ssh has no post step
    expect(await liveVersion(path)).toBe('v1')
    // the image was not on the host: it was pulled, which the htpasswd registry allows only after the login
    expect(first.stdout).toMatch(/pulled .*@sha256:/)

    // secrets: masked, never in argv, never in logs, not in files left behind except the release's .env
    expect(hits).toEqual([])
    expect(first.masks).toEqual(expect.arrayContaining([reg.password, ENV_SECRET]))
    // what the log shows: everything but the ::add-mask:: commands themselves (the runner consumes those)
    const shown = (t: string): string =>
      t
        .split('\n')
        .filter(l => !l.startsWith('::add-mask::'))
        .join('\n')
    for (const s of secrets())
      expect(shown(first.stdout + first.stderr + first.summary + (first.post?.stdout ?? ''))).not.toContain(s)
    expect(filesHolding(path, secrets(), p => p.endsWith('/.env'))).toEqual([])
    expect(readdirSync(join(path, '.shipline', 'run'))).toEqual([])
    const dockerConfig = join(homedir(), '.docker', 'config.json')
    if (existsSync(dockerConfig)) expect(readFileSync(dockerConfig, 'utf8')).not.toContain(reg.host)

    // GitHub Deployment: created for the commit, payload with the release, in_progress then success
    const dep = gh.deployments.find(d => d.environment === 'staging')!
    expect(dep).toMatchObject({ ref: SHA, task: 'deploy' })
    expect(dep.payload).toMatchObject({
      release_id: first.outputs['release-id'],
      version: 'v1',
      images: JSON.parse(first.outputs.images)
    })
    const states = gh.deploymentStatuses.filter(s => s.deployment_id === dep.id).map(s => s.state)
    expect(states).toEqual(['in_progress', 'success'])
    const ok = gh.deploymentStatuses.find(s => s.deployment_id === dep.id && s.state === 'success')!
    expect(ok.environment_url).toBe('https://staging.example.com')
    expect(ok.log_url).toBe('https://github.com/acme/shop/actions/runs/4242')
    const body = gh.requests.find(r => r.method === 'POST' && r.path.endsWith('/deployments'))!
      .body as Record<string, unknown>
    expect(body).toMatchObject({ auto_merge: false, required_contexts: [] })
  })

  it('a deploy killed mid-way: the old release serves again, the lock is free, the next deploy succeeds', async () => {
    // the unhealthy image with auto-rollback off and a long health timeout: the deploy sits in its
    // health wait until we kill it
    const yml = loadActionYml('deploy-ssh')
    const inputs = { ...deployInputs('bad', { 'auto-rollback': 'false', 'health-timeout': '600' }) }
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/root',
      GITHUB_SHA: SHA,
      GITHUB_WORKSPACE: ws.dir
    }
    for (const [k, spec] of Object.entries(yml.inputs ?? {}))
      env[`INPUT_${k.toUpperCase()}`] = inputs[k] ?? String(spec?.default ?? '')
    env['INPUT_GITHUB-TOKEN'] = ''
    const child = spawn(node24(), [join(REPO_ROOT, 'dist', 'deploy-ssh', 'index.js')], {
      env,
      cwd: ws.dir,
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    const exited = new Promise<void>(r => child.once('exit', () => r()))
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', d => {
        out += d
        if (/waiting up to 600s/.test(out)) resolve()
      })
      child.once('exit', () => reject(new Error(`deploy ended before its health wait:\n${out}`)))
    })
    child.kill('SIGKILL')
    await exited

    // the lock holder on the host saw its channel die: it puts v1 back, then lets the lock go
    expect(await eventuallyVersion(path, 'v1')).toBe('v1')
    expect(readlinkSync(join(path, '.shipline', 'current'))).toBe(`releases/${first.outputs['release-id']}`)

    const next = await runActionBundle({
      action: 'deploy-ssh',
      inputs: deployInputs('v2', { 'lock-timeout': '60' }),
      github: runnerGitHub(),
      cwd: ws.dir
    })
    expect(next.exitCode).toBe(0)
    expect(next.outputs).toMatchObject({ status: 'deployed', version: 'v2', 'previous-version': 'v1' })
    expect(await liveVersion(path)).toBe('v2')
    expect(readLedger(path).map(e => e.event)).toEqual(['deploy', 'recovered', 'deploy'])
    expect(readdirSync(join(path, '.shipline', 'run'))).toEqual([])
  })

  it('rollback bundle: back to v1 without the registry, recorded as a Deployment', async () => {
    const before = reg.requests().length
    const r = await runActionBundle({
      action: 'rollback',
      inputs: { ...sshInputs(), environment: 'staging' },
      github: runnerGitHub(),
      cwd: ws.dir
    })
    expect(r.exitCode).toBe(0)
    expect(r.outputs).toMatchObject({
      'from-version': 'v2',
      'to-version': 'v1',
      'release-id': first.outputs['release-id'],
      status: 'rolled-back'
    })
    expect(r.summary).toContain('| rolled-back |')
    expect(await liveVersion(path)).toBe('v1')
    expect(reg.requests().length).toBe(before) // images still on the host: no registry involved
    const dep = gh.deployments.filter(d => d.environment === 'staging').pop()!
    expect(dep).toMatchObject({ task: 'deploy:rollback', ref: SHA })
    expect(dep.payload).toMatchObject({
      release_id: first.outputs['release-id'],
      version: 'v1',
      rollback: true,
      from_version: 'v2'
    })
    expect(gh.deploymentStatuses.filter(s => s.deployment_id === dep.id).map(s => s.state)).toEqual([
      'in_progress',
      'success'
    ])
    // GitHub's auto_inactive marked the earlier successful staging deployment inactive
    const older = gh.deployments.find(d => d.environment === 'staging')!
    expect(gh.deploymentStatuses.filter(s => s.deployment_id === older.id).map(s => s.state)).toContain(
      'inactive'
    )
  })
})

describe('texts sent to GitHub and the job summary pass through the run redactor', () => {
  it('a Compose error that quotes an env-file value: not in the Deployment status, not in the summary', async () => {
    const leaky = join(ws.dir, 'leaky.yml')
    writeFileSync(
      leaky,
      ['services:', '  web:', '    image: placeholder.invalid/x:0', '    restart: "${APP_SECRET}"', ''].join(
        '\n'
      )
    )
    const r = await runActionBundle({
      action: 'deploy-ssh',
      inputs: deployInputs('v1', { path: ws.path(), 'compose-file': 'leaky.yml', environment: 'leaky' }),
      github: runnerGitHub(),
      cwd: ws.dir
    })
    expect(r.exitCode).not.toBe(0)
    // the one-line error is Compose's own (it names the value): the log shows it masked by the runner
    expect(r.stdout + r.stderr).toMatch(/invalid restart policy/)
    const dep = gh.deployments.find(d => d.environment === 'leaky')!
    const statuses = gh.deploymentStatuses.filter(s => s.deployment_id === dep.id)
    expect(statuses.map(s => s.state)).toEqual(['in_progress', 'failure'])
    expect(statuses.map(s => s.description).join('\n')).toMatch(/invalid restart policy '\*\*\*'/)
    for (const s of statuses) expect(JSON.stringify(s)).not.toContain(ENV_SECRET)
    expect(r.summary).toMatch(/\*\*\*/)
    expect(r.summary).not.toContain(ENV_SECRET)
  })
})

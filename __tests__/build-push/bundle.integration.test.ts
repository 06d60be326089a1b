/**
 * dist/build-push/index.js run the way the Actions runner runs it (runActionBundle: INPUT_* variables,
 * GITHUB_OUTPUT/STATE/STEP_SUMMARY, then the post step), against a real dockerd and a real registry with
 * htpasswd auth. While it runs, every process's argv is watched for the password.
 * Needs a built bundle (`npm run build`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dockerLogin, startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { uniqueName } from '../../src/testkit/net.js'
import {
  node24,
  REPO_ROOT,
  runActionBundle,
  type RunOptions,
  type RunResult
} from '../../src/testkit/runner.js'
import { appContext, removeRepositories, skopeoDigest, watchArgv } from './helpers.js'

const SHA = 'c0ffee0123456789abcdef0123456789abcdef01'
const PR_HEAD = 'feed0123456789abcdef0123456789abcdef0123'

describe('dist/build-push run as the runner does', () => {
  let reg: TestRegistry
  const temp = mkdtempSync(join(tmpdir(), 'shipline-bp-bundle-'))
  const ctx = appContext(uniqueName('bundle'))
  const repos: string[] = []
  const home = join(temp, 'home')
  const runnerTemp = join(temp, 'runner-temp')

  beforeAll(async () => {
    mkdirSync(home)
    mkdirSync(runnerTemp)
    reg = await startRegistry({ auth: 'htpasswd' })
  })
  afterAll(async () => {
    await removeRepositories(...repos)
    await reg?.stop()
    ctx.remove()
    rmSync(temp, { recursive: true, force: true })
  })

  function run(inputs: Record<string, string>, opts: Partial<RunOptions> = {}): Promise<RunResult> {
    return runActionBundle({
      action: 'build-push',
      inputs: {
        context: ctx.dir,
        'registry-username': reg.username,
        'registry-password': reg.password,
        ...inputs
      },
      github: { repository: 'Shipline-Test/App', sha: SHA, ...opts.github },
      env: { HOME: home, RUNNER_TEMP: runnerTemp, ...opts.env },
      timeoutMs: 120_000
    })
  }

  it('pushes the SHA and stage tags; digest = registry; lowercases with a notice; no password anywhere; post removes the config', async () => {
    const name = uniqueName('Team/App')
    const image = `${reg.host}/${name.toLowerCase()}`
    repos.push(image)
    const watch = watchArgv(reg.password)
    const r = await run({ image: `${reg.host}/${name}`, tags: 'v1.0.0' })
    const argvWithPassword = watch.stop()
    expect([r.exitCode, r.stderr]).toEqual([0, expect.any(String)])
    const { digest } = r.outputs
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(await skopeoDigest(reg, `${image}:${SHA}`)).toBe(digest)
    expect(await skopeoDigest(reg, `${image}:stage`)).toBe(digest)
    expect(await skopeoDigest(reg, `${image}:v1.0.0`)).toBe(digest)
    expect(r.outputs).toMatchObject({
      image,
      ref: `${image}@${digest}`,
      tags: [`${image}:${SHA}`, `${image}:stage`, `${image}:v1.0.0`].join('\n'),
      'sha-tag': `${image}:${SHA}`,
      pushed: 'true'
    })
    expect(r.outputs['image-id']).toMatch(/^sha256:/)
    expect(r.annotations).toContainEqual({
      level: 'notice',
      message: expect.stringMatching(/lowercased to '.*team\/app/)
    })
    expect(r.summary).toContain(digest)
    // the classic builder here (no buildx on this machine); buildx where it is installed
    expect(r.summary).toMatch(/builder \| (docker build \(classic builder; no buildx\)|buildx \()/)
    // the password: masked, never printed, never on a command line
    expect(r.masks).toContain(reg.password)
    const printed = `${r.stdout}\n${r.stderr}\n${r.post?.stdout}\n${r.post?.stderr}`
      .split('\n')
      .filter(l => l.includes(reg.password))
    expect(printed.filter(l => !l.startsWith('::add-mask::'))).toEqual([])
    expect(argvWithPassword).toEqual([])
    // the login lived in a temporary folder under RUNNER_TEMP, gone after the post step; ~/.docker untouched
    expect(r.state['docker-config']).toMatch(new RegExp(`^${runnerTemp}/shipline-docker-`))
    expect(r.post?.exitCode).toBe(0)
    expect(existsSync(r.state['docker-config'])).toBe(false)
    expect(readdirSync(runnerTemp).filter(f => f.startsWith('shipline-docker-'))).toEqual([])
    expect(existsSync(join(home, '.docker', 'config.json'))).toBe(false)
  })

  it('pushes through the token flow (ghcr.io style) with the default stage tag', async () => {
    const tokenReg = await startRegistry({ auth: 'token' })
    try {
      const image = `${tokenReg.host}/${uniqueName('team/token')}`
      repos.push(image)
      const r = await run({
        image,
        'registry-username': tokenReg.username,
        'registry-password': tokenReg.password
      })
      expect(r.exitCode).toBe(0)
      expect(await skopeoDigest(tokenReg, `${image}:${SHA}`)).toBe(r.outputs.digest)
      expect(await skopeoDigest(tokenReg, `${image}:stage`)).toBe(r.outputs.digest)
      // docker's own token requests and the client's (read-back, registry-side tags) both went to the issuer
      expect(
        tokenReg.tokenRequests().filter(t => t.status === 200 && t.scopes.some(s => s.endsWith(':pull,push')))
          .length
      ).toBeGreaterThan(0)
      expect(r.post?.exitCode).toBe(0)
    } finally {
      await tokenReg.stop()
    }
  })

  it('without a password it pushes with a login made by an earlier step, and leaves that config as it was', async () => {
    const earlier = dockerLogin(reg) // as docker/login-action would, into the user's DOCKER_CONFIG
    try {
      const before = readFileSync(join(earlier.config, 'config.json'), 'utf8')
      const image = `${reg.host}/${uniqueName('team/earlier')}`
      repos.push(image)
      const r = await run({ image, 'registry-password': '' }, { env: { DOCKER_CONFIG: earlier.config } })
      expect([r.exitCode, r.annotations]).toEqual([0, []])
      expect(await skopeoDigest(reg, `${image}:stage`)).toBe(r.outputs.digest)
      expect(readFileSync(join(earlier.config, 'config.json'), 'utf8')).toBe(before)
      expect(readdirSync(earlier.config).filter(f => f.startsWith('shipline-docker-'))).toEqual([])
    } finally {
      earlier.remove()
    }
  })

  it('push: false on a pull request: PR head SHA, no digest, the image id, and says nothing was pushed', async () => {
    const image = `${reg.host}/${uniqueName('team/pr')}`
    repos.push(image)
    const r = await run(
      { image, push: 'false', 'registry-password': '' },
      { github: { eventName: 'pull_request', event: { pull_request: { head: { sha: PR_HEAD } } } } }
    )
    expect(r.exitCode).toBe(0)
    expect(r.outputs).toMatchObject({
      digest: '',
      ref: '',
      pushed: 'false',
      'sha-tag': `${image}:${PR_HEAD}`
    })
    expect(r.outputs['image-id']).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(r.summary).toMatch(/nothing was pushed/)
    expect(await skopeoDigest(reg, `${image}:${PR_HEAD}`)).toBeUndefined()
  })

  it('defaults the image to ghcr.io/<owner>/<repo>/<service>, lowercased with a notice', async () => {
    const repo = `Shipline-Test/${uniqueName('App')}`
    const image = `ghcr.io/${repo.toLowerCase()}/api`
    repos.push(image)
    const r = await run(
      { service: 'api', push: 'false', 'registry-password': '' },
      { github: { repository: repo } }
    )
    expect(r.exitCode).toBe(0)
    expect(r.outputs).toMatchObject({
      image,
      'sha-tag': `${image}:${SHA}`,
      tags: `${image}:${SHA}\n${image}:stage`
    })
    expect(r.annotations).toContainEqual({
      level: 'notice',
      message: `Image name 'ghcr.io/${repo}/api' lowercased to '${image}': registries accept lowercase repository names only.`
    })
  })

  /** Debian's docker.io CLI (20.10) has BuildKit built in; the CLI on PATH here (28) has it only through buildx */
  const debianCli = ((): boolean => {
    try {
      return (
        Number(
          execFileSync('/usr/bin/docker', ['version', '--format', '{{.Client.Version}}'], {
            encoding: 'utf8'
          }).split('.')[0]
        ) < 23
      )
    } catch {
      return false
    }
  })()

  ;(debianCli ? it : it.skip)(
    'secrets: masked, on no command line, reach the BuildKit build; a secret-looking build-arg warns; metadata output',
    async () => {
      const value = `s3cr3t-${uniqueName('v')}`
      const image = `${reg.host}/${uniqueName('team/secrets')}`
      repos.push(image)
      const c = appContext(uniqueName('bundle-secrets'))
      try {
        // a fresh layer before the RUN: BuildKit's cache does not key on a secret's value, so a second run
        // would reuse the first's RUN layer and print nothing
        writeFileSync(join(c.dir, 'nonce'), `${process.pid}-${Date.now()}-${Math.random()}`)
        writeFileSync(
          join(c.dir, 'Dockerfile'),
          'FROM scratch\nCOPY busybox /bin/busybox\nCOPY nonce /nonce\nRUN --mount=type=secret,id=tok,required=true ["/bin/busybox", "wc", "-c", "/run/secrets/tok"]\n'
        )
        const watch = watchArgv(value)
        const r = await run(
          { image, context: c.dir, secrets: `tok=${value}`, 'build-args': 'NPM_TOKEN=not-really-secret' },
          { env: { PATH: `/usr/bin:${process.env.PATH}` } }
        )
        const seen = watch.stop()
        expect([r.exitCode, r.annotations.filter(a => a.level === 'error')]).toEqual([0, []])
        expect(seen.filter(l => !l.startsWith('environment (SHIPLINE_BUILD_SECRET_0) of '))).toEqual([])
        expect(r.masks).toEqual(expect.arrayContaining([value, 'not-really-secret']))
        expect(
          `${r.stdout}\n${r.stderr}\n${r.summary}`
            .split('\n')
            .filter(l => l.includes(value) && !l.startsWith('::add-mask::'))
        ).toEqual([])
        expect(r.stdout).toContain(`${value.length} /run/secrets/tok`)
        expect(r.annotations).toContainEqual({
          level: 'warning',
          message: expect.stringMatching(
            /^Input 'build-args': 'NPM_TOKEN' looks like a secret.*Pass it in 'secrets'/
          )
        })
        expect(JSON.parse(r.outputs.metadata)).toEqual({
          'containerimage.digest': r.outputs.digest,
          'containerimage.config.digest': r.outputs['image-id'],
          'image.name': r.outputs.tags.split('\n').join(',')
        })
      } finally {
        c.remove()
      }
    }
  )

  it('push-by-digest without buildx fails before building, with one line naming the input', async () => {
    const r = await run({ image: `${reg.host}/team/never`, 'push-by-digest': 'true' })
    expect(r.exitCode).toBe(1)
    expect(r.annotations.filter(a => a.level === 'error')).toEqual([
      {
        level: 'error',
        message: expect.stringMatching(/^Input 'push-by-digest' needs buildx, .*docker\/setup-buildx-action/)
      }
    ])
    expect(r.summary).not.toMatch(/Tags it was to push/)
  })

  it('an invalid tag fails with one line that says the grammar', async () => {
    const r = await run({ image: `${reg.host}/team/never`, tags: 'ok\nnot:ok' })
    expect(r.exitCode).toBe(1)
    expect(r.annotations.filter(a => a.level === 'error')).toEqual([
      {
        level: 'error',
        message: expect.stringMatching(
          /^Input 'tags': 'not:ok' is not a valid image tag: it contains ':'\. Tags are /
        )
      }
    ])
    expect(r.summary).toMatch(
      /^### build-push failed: `.*team\/never`\n\n> Input 'tags': 'not:ok' is not a valid image tag/
    )
  })

  it('a wrong password fails with one line and leaves nothing behind', async () => {
    const image = `${reg.host}/${uniqueName('team/denied')}`
    repos.push(image)
    const r = await run({ image, 'registry-password': 'wrong-password-123' })
    expect(r.exitCode).toBe(1)
    const errors = r.annotations.filter(a => a.level === 'error')
    expect(errors).toHaveLength(1)
    expect(errors[0].message).toMatch(
      new RegExp(
        `^Login to ${reg.host} as ${reg.username} failed: .*401.*Check 'registry-username' and 'registry-password'\\.$`
      )
    )
    expect(r.summary).toMatch(/^### build-push failed: `.*team\/denied.*`\n\n> Login to .* failed: /)
    expect(readdirSync(runnerTemp).filter(f => f.startsWith('shipline-docker-'))).toEqual([])
  })

  it('the post step removes a config folder main left behind (main killed or cancelled)', () => {
    const left = mkdtempSync(join(runnerTemp, 'shipline-docker-'))
    writeFileSync(join(left, 'config.json'), '{"auths":{"x":{"auth":"c2VjcmV0"}}}', { mode: 0o600 })
    const summary = join(temp, 'post-summary.md')
    writeFileSync(summary, '')
    const out = execFileSync(node24(), [join(REPO_ROOT, 'dist', 'build-push', 'index.js')], {
      env: {
        PATH: process.env.PATH,
        HOME: home,
        'STATE_shipline-is-post': 'true',
        'STATE_docker-config': left,
        GITHUB_STEP_SUMMARY: summary
      },
      encoding: 'utf8'
    })
    expect(out).toContain(`removed the temporary Docker config ${left}`)
    expect(existsSync(left)).toBe(false)
  })
})

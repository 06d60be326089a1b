/**
 * The buildx code path end to end, with a stand-in buildx CLI plugin (fake-buildx.ts) that the real docker
 * CLI discovers through build-push's temporary config and that builds and pushes with the real engine to
 * a real registry: build-push must choose buildx, hand it the right argv (push, metadata file, provenance
 * off, gha cache only when the runner offers it, one scope per image) and read the digest back.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { uniqueName } from '../../src/testkit/net.js'
import { buildPush, type BuildPushOptions, type Log } from '../../src/lib/build/run.js'
import { removeDockerConfig } from '../../src/lib/docker/config.js'
import { installFakeBuildx } from './fake-buildx.js'
import { appContext, buildxArgv, pushOptions, removeRepositories, skopeoDigest } from './helpers.js'

const SHA = '1111111111222222222233333333334444444444'

describe('the buildx path (stand-in plugin, real engine, real registry)', () => {
  let reg: TestRegistry
  const temp = mkdtempSync(join(tmpdir(), 'shipline-bp-buildx-'))
  const ctx = appContext(uniqueName('buildx'))
  const repos: string[] = []
  const users = { container: join(temp, 'user-container'), docker: join(temp, 'user-docker') }
  const logs = { container: join(temp, 'argv-container.jsonl'), docker: join(temp, 'argv-docker.jsonl') }

  beforeAll(async () => {
    installFakeBuildx(users.container, { argvLog: logs.container, driver: 'docker-container' })
    installFakeBuildx(users.docker, { argvLog: logs.docker, driver: 'docker' })
    mkdirSync(join(users.container, 'buildx'))
    reg = await startRegistry({ auth: 'htpasswd' })
  })
  afterAll(async () => {
    await removeRepositories(...repos)
    await reg?.stop()
    ctx.remove()
    rmSync(temp, { recursive: true, force: true })
  })

  const argvOf = buildxArgv
  const options = (user: string, over: Partial<BuildPushOptions> = {}): BuildPushOptions =>
    pushOptions({ reg, prefix: 'bp-buildx/app', sha: SHA, context: ctx.dir, temp, user, repos }, over)
  const log = (lines: string[] = []): Log => ({
    info: m => lines.push(m),
    notice: m => lines.push(`notice: ${m}`),
    warning: m => lines.push(`warning: ${m}`),
    group: (_n, fn) => fn()
  })

  it('pushes with docker buildx build --push and the digest the registry answers', async () => {
    const o = options(users.container)
    try {
      const r = await buildPush(o, log())
      expect(r.builder).toBe(
        'buildx (github.com/docker/buildx v0.0.0-fake shipline, docker-container driver)'
      )
      expect(r.digest).toMatch(/^sha256:/)
      expect(await skopeoDigest(reg, `${o.image.image}:${SHA}`)).toBe(r.digest)
      expect(await skopeoDigest(reg, `${o.image.image}:stage`)).toBe(r.digest)
      const build = argvOf(logs.container).find(a => a[1] === 'build')!
      expect(build.slice(0, 2)).toEqual(['buildx', 'build'])
      expect(build).toEqual(
        expect.arrayContaining([
          '--push',
          '--provenance=false',
          '--metadata-file',
          '--tag',
          `${o.image.image}:stage`
        ])
      )
      expect(build).not.toContain('--cache-from')
      // the builder config of the user's folder is what buildx sees
      expect(o.config.env.BUILDX_CONFIG).toBe(join(users.container, 'buildx'))
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('pushes by digest with no tag, hands secrets over by environment and explicit caches over the gha shortcut', async () => {
    const value = `s3cr3t-${uniqueName('v')}`
    const o = options(users.container, {
      env: { ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_CACHE_URL: 'http://127.0.0.1:9/' },
      pushByDigest: true,
      secrets: [{ id: 'tok', value }],
      buildContexts: new Map([['lib', ctx.dir]]),
      cacheFrom: ['type=registry,ref=example.test/o/app:cache'],
      cacheTo: ['type=registry,ref=example.test/o/app:cache,mode=max']
    })
    try {
      const r = await buildPush(o, log())
      const build = argvOf(logs.container)
        .filter(a => a[1] === 'build')
        .at(-1)!
      expect(build.join(' ')).not.toContain(value)
      expect(JSON.parse(readFileSync(`${logs.container}.secrets`, 'utf8'))).toEqual({
        SHIPLINE_BUILD_SECRET_0: value.length
      })
      expect(build).toEqual(
        expect.arrayContaining([
          '--output',
          `type=image,name=${o.image.image},push-by-digest=true,name-canonical=true,push=true`,
          '--secret',
          'id=tok,env=SHIPLINE_BUILD_SECRET_0',
          '--build-context',
          `lib=${ctx.dir}`,
          '--cache-from',
          'type=registry,ref=example.test/o/app:cache',
          '--cache-to',
          'type=registry,ref=example.test/o/app:cache,mode=max'
        ])
      )
      expect(build).not.toContain('--tag')
      expect(build).not.toContain('--push')
      expect(build.join(' ')).not.toContain('type=gha')
      expect(r).toMatchObject({ byDigest: true, tags: [], shaTag: '', ref: `${o.image.image}@${r.digest}` })
      expect(await skopeoDigest(reg, `${o.image.image}@${r.digest}`)).toBe(r.digest)
      // no tag of ours: neither the SHA tag nor the stage tag was pushed
      expect(await skopeoDigest(reg, `${o.image.image}:${SHA}`)).toBeUndefined()
      expect(await skopeoDigest(reg, `${o.image.image}:stage`)).toBeUndefined()
      expect(r.metadata).toEqual({ 'containerimage.digest': r.digest, 'image.name': o.image.image })
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('uses the gha cache when the runner offers it, scoped per image', async () => {
    const o = options(users.container, {
      env: { ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_CACHE_URL: 'http://127.0.0.1:9/' },
      push: false,
      login: undefined
    })
    try {
      await buildPush(o, log())
      const build = argvOf(logs.container)
        .filter(a => a[1] === 'build')
        .at(-1)!
      const scope = o.image.image.replace(/[^a-zA-Z0-9._-]+/g, '-')
      expect(build).toEqual(
        expect.arrayContaining([
          '--load',
          '--cache-from',
          `type=gha,scope=${scope}`,
          '--cache-to',
          `type=gha,mode=max,scope=${scope}`
        ])
      )
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('with the docker driver: reads the cache only (with a notice), and refuses several platforms', async () => {
    const lines: string[] = []
    const o = options(users.docker, {
      env: { ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'http://127.0.0.1:9/' },
      push: false,
      login: undefined
    })
    try {
      await buildPush(o, log(lines))
      const build = argvOf(logs.docker)
        .filter(a => a[1] === 'build')
        .at(-1)!
      expect(build).toContain('--cache-from')
      expect(build).not.toContain('--cache-to')
      expect(lines).toContainEqual(expect.stringMatching(/^notice: .*docker\/setup-buildx-action/))
      await expect(buildPush({ ...o, platforms: ['linux/amd64', 'linux/arm64'] }, log())).rejects.toThrow(
        /docker driver.*docker\/setup-buildx-action/
      )
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })
})

/**
 * build-push's library on real parts: a real dockerd builds the busybox sample app (FROM scratch) with the
 * classic builder and pushes it to a real docker-registry (htpasswd, and token auth as ghcr.io does it);
 * the digest must be what the registry answers for every tag (asked independently, with skopeo).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { uniqueName } from '../../src/testkit/net.js'
import { buildPush, type BuildPushOptions, type Log } from '../../src/lib/build/run.js'
import { normalizeImage } from '../../src/lib/build/naming.js'
import { planTags } from '../../src/lib/build/tags.js'
import { ociLabels } from '../../src/lib/build/labels.js'
import { registryAccess } from '../../src/lib/build/registry.js'
import { createDockerConfig, removeDockerConfig } from '../../src/lib/docker/config.js'
import { isUserError } from '../../src/lib/errors.js'
import { parseBuildSecrets, parseSsh } from '../../src/lib/build/secrets.js'
import { appContext, removeRepositories, skopeoDigest, watchArgv } from './helpers.js'

const SHA = '0123456789abcdef0123456789abcdef01234567'

/** The major version of a docker CLI (Debian's docker.io 20.10 has BuildKit built in; 23.0 and later need buildx). */
const clientMajor = (bin: string): number => {
  try {
    return Number(
      execFileSync(bin, ['version', '--format', '{{.Client.Version}}'], { encoding: 'utf8' }).split('.')[0]
    )
  } catch {
    return NaN
  }
}
/** A docker CLI with BuildKit built in, when this machine has one */
const BUILDKIT_CLI = ['/usr/bin/docker', 'docker'].find(b => clientMajor(b) < 23)
const MODERN_CLI = clientMajor('docker') >= 23

function recorder(): Log & { lines: string[] } {
  const lines: string[] = []
  return {
    lines,
    info: m => lines.push(m),
    notice: m => lines.push(`notice: ${m}`),
    warning: m => lines.push(`warning: ${m}`),
    group: async (name, fn) => {
      lines.push(`group: ${name}`)
      return fn()
    }
  }
}

describe('build and push with the classic builder (real dockerd, real registry)', () => {
  let basic: TestRegistry
  let token: TestRegistry
  const temp = mkdtempSync(join(tmpdir(), 'shipline-bp-lib-'))
  const repos: string[] = []
  const ctx = appContext(uniqueName('v'))

  beforeAll(async () => {
    // one after the other, so afterAll stops whichever started even when the other did not
    basic = await startRegistry({ auth: 'htpasswd' })
    token = await startRegistry({ auth: 'token' })
  })
  afterAll(async () => {
    await removeRepositories(...repos)
    await basic?.stop()
    await token?.stop()
    ctx.remove()
    rmSync(temp, { recursive: true, force: true })
  })

  function options(reg: TestRegistry, over: Partial<BuildPushOptions> = {}): BuildPushOptions {
    const image = normalizeImage(`${reg.host}/${uniqueName('bp-lib/app')}`)
    repos.push(image.image)
    const config = createDockerConfig(temp, { registry: reg.host })
    return {
      context: ctx.dir,
      file: '',
      image,
      tags: planTags(SHA, 'stage', ['v1']),
      labels: ociLabels(
        { serverUrl: 'https://github.com', repository: 'o/r', sha: SHA, sourceDateEpoch: '1700000000' },
        new Map([['team', 'core']])
      ),
      buildArgs: new Map([['VERSION', '1']]),
      platforms: [],
      push: true,
      config,
      login: { registry: reg.host, username: reg.username, password: reg.password },
      registry: registryAccess(image, { username: reg.username, password: reg.password }),
      builder: 'classic',
      ...over
    }
  }

  it('pushes every tag; the digest is what the registry answers for each; labels are set', async () => {
    const o = options(basic)
    try {
      const log = recorder()
      const r = await buildPush(o, log)
      expect(r.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
      expect(r.ref).toBe(`${o.image.image}@${r.digest}`)
      expect(r.tags).toEqual([`${o.image.image}:${SHA}`, `${o.image.image}:stage`, `${o.image.image}:v1`])
      expect(r.shaTag).toBe(`${o.image.image}:${SHA}`)
      for (const tag of [SHA, 'stage', 'v1'])
        expect(await skopeoDigest(basic, `${o.image.image}:${tag}`)).toBe(r.digest)
      expect(r.builder).toMatch(/classic/)
      expect(r.imageId).toMatch(/^sha256:/)
      expect(r.metadata).toEqual({
        'containerimage.digest': r.digest,
        'containerimage.config.digest': r.imageId,
        'image.name': r.tags.join(',')
      })
      const labels = JSON.parse(
        execFileSync('docker', ['image', 'inspect', '--format', '{{json .Config.Labels}}', r.imageId], {
          encoding: 'utf8'
        })
      ) as Record<string, string>
      expect(labels).toMatchObject({
        'org.opencontainers.image.source': 'https://github.com/o/r',
        'org.opencontainers.image.revision': SHA,
        'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
        team: 'core'
      })
      // the login went into the step's own config folder, nowhere else
      expect(JSON.parse(readFileSync(join(o.config.dir, 'config.json'), 'utf8')).auths).toHaveProperty([
        basic.host
      ])
    } finally {
      removeDockerConfig(o.config.dir)
    }
    expect(existsSync(o.config.dir)).toBe(false)
  })

  it('pushes through the token flow (ghcr.io style) and reads the digest back', async () => {
    const o = options(token, { tags: planTags(SHA, 'stage', []) })
    try {
      const r = await buildPush(o, recorder())
      expect(await skopeoDigest(token, `${o.image.image}:${SHA}`)).toBe(r.digest)
      expect(await skopeoDigest(token, `${o.image.image}:stage`)).toBe(r.digest)
      expect(token.tokenRequests().some(t => t.scopes.some(s => s.includes('push')))).toBe(true)
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('pushes to a registry without auth when no password is given', async () => {
    const open = await startRegistry({ auth: 'none' })
    const o = options(open, { login: undefined, tags: planTags(SHA, 'stage', []) })
    try {
      const r = await buildPush(o, recorder())
      expect(await skopeoDigest(open, `${o.image.image}:stage`)).toBe(r.digest)
      expect(JSON.parse(readFileSync(join(o.config.dir, 'config.json'), 'utf8')).auths ?? {}).toEqual({})
    } finally {
      removeDockerConfig(o.config.dir)
      await open.stop()
    }
  })

  it('a re-run that builds the commit again says the SHA tag moved', async () => {
    const first = options(basic, { tags: planTags(SHA, '', []) })
    const second = {
      ...first,
      labels: new Map([...first.labels, ['org.opencontainers.image.created', '2030-01-01T00:00:00Z']])
    }
    try {
      const a = await buildPush(first, recorder())
      const log = recorder()
      const b = await buildPush(second, log)
      expect(b.digest).not.toBe(a.digest)
      expect(b.replacedDigest).toBe(a.digest)
      expect(log.lines).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^warning: .*:${SHA} pointed at ${a.digest} before this push and now at ${b.digest}.*SOURCE_DATE_EPOCH`
          )
        )
      )
      expect(await skopeoDigest(basic, b.shaTag)).toBe(b.digest)
    } finally {
      removeDockerConfig(first.config.dir)
    }
  })

  it('push: false builds only: no digest, the local image id, nothing in the registry', async () => {
    const o = options(basic, { push: false, login: undefined })
    try {
      const r = await buildPush(o, recorder())
      expect(r).toMatchObject({ digest: '', ref: '', pushed: false, tagDigests: {} })
      expect(r.imageId).toMatch(/^sha256:[0-9a-f]{64}$/)
      expect(
        execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', r.shaTag], {
          encoding: 'utf8'
        }).trim()
      ).toBe(r.imageId)
      expect(await skopeoDigest(basic, r.shaTag)).toBeUndefined()
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('a wrong password is one clear line', async () => {
    const o = options(basic, {
      login: { registry: basic.host, username: basic.username, password: 'not-the-password' }
    })
    try {
      const e = await buildPush(o, recorder()).catch((err: unknown) => err)
      expect(isUserError(e)).toBe(true)
      const msg = (e as Error).message
      expect(msg).toMatch(
        new RegExp(
          `^Login to ${basic.host.replace(/\./g, '\\.')} as ${basic.username} failed: .*401.*Check 'registry-username' and 'registry-password'\\.$`
        )
      )
      expect(msg).not.toContain('\n')
      expect(msg).not.toContain('not-the-password')
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('pushing without a login says the registry wants one', async () => {
    const o = options(basic, { login: undefined })
    try {
      await expect(buildPush(o, recorder())).rejects.toThrow(
        /^docker push .* failed: .*set 'registry-password'/
      )
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('several platforms without buildx is a clear error before anything is built', async () => {
    const o = options(basic, { platforms: ['linux/amd64', 'linux/arm64'], builder: undefined })
    try {
      await expect(buildPush(o, recorder())).rejects.toThrow(/needs buildx.*docker\/setup-buildx-action/)
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('a failing Dockerfile step is one line naming it', async () => {
    const bad = appContext(uniqueName('bad'))
    const o = options(basic, { push: false, login: undefined })
    try {
      writeFileSync(
        join(bad.dir, 'Dockerfile'),
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "false"]\n'
      )
      await expect(buildPush({ ...o, context: bad.dir }, recorder())).rejects.toThrow(
        /^docker build failed: The command .*busybox.*false.* returned a non-zero code: 1\. Fix the Dockerfile/
      )
    } finally {
      bad.remove()
      removeDockerConfig(o.config.dir)
    }
  })

  const sha256 = (v: string): string => createHash('sha256').update(v).digest('hex')
  /** every file under dir whose content holds `needle` */
  const filesHolding = (dir: string, needle: string): string[] =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter(d => d.isFile())
      .map(d => join(d.parentPath, d.name))
      .filter(f => readFileSync(f, 'utf8').includes(needle))

  ;(BUILDKIT_CLI ? it : it.skip)(
    `secrets, secret-envs, secret-files and ssh reach a BuildKit docker build (${BUILDKIT_CLI ?? 'no docker CLI before 23.0 here'}); no value in any argv or file`,
    async () => {
      const c = appContext(uniqueName('secrets'))
      const value = `s3cr3t-${uniqueName('v')}`
      const envValue = `env-${uniqueName('v')}`
      const fileValue = `file-${uniqueName('v')}`
      const secretFile = join(temp, 'netrc')
      writeFileSync(secretFile, fileValue, { mode: 0o600 })
      const key = join(temp, 'id_ed25519')
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key])
      process.env.SHIPLINE_TEST_SECRET = envValue
      const o = options(basic, { bin: BUILDKIT_CLI, tags: planTags(SHA, 'stage', []) })
      try {
        // a fresh layer before the RUNs: BuildKit's cache does not key on a secret's value, so a second run
        // would reuse the first's layers and its sums
        writeFileSync(join(c.dir, 'nonce'), `${process.pid}-${Date.now()}-${Math.random()}`)
        writeFileSync(
          join(c.dir, 'Dockerfile'),
          [
            'FROM scratch',
            'COPY busybox /bin/busybox',
            'COPY nonce /nonce',
            'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
            'RUN --mount=type=secret,id=tok,required=true --mount=type=secret,id=env,required=true --mount=type=secret,id=netrc,required=true \\',
            '    sha256sum /run/secrets/tok /run/secrets/env /run/secrets/netrc > /sums',
            'RUN --mount=type=ssh,id=deploy test -S "$SSH_AUTH_SOCK" && echo ssh-ok > /ssh',
            ''
          ].join('\n')
        )
        const { secrets } = parseBuildSecrets(
          {
            secrets: `tok=${value}`,
            secretEnvs: 'env=SHIPLINE_TEST_SECRET',
            secretFiles: `netrc=${secretFile}`
          },
          process.env
        )
        const log = recorder()
        const watch = watchArgv(value)
        let leftInConfig: string[] = []
        const r = await buildPush(
          { ...o, context: c.dir, secrets, ssh: parseSsh(`deploy=${key}`, {}) },
          {
            ...log,
            // before the step's config folder is removed: no file in it holds the value
            info: m => {
              if (/^docker build/.test(m)) leftInConfig = filesHolding(o.config.dir, value)
              log.info(m)
            }
          }
        )
        // the value was on no command line; only the docker processes' environment held it, by its own name
        const seen = watch.stop()
        expect(seen).toEqual(
          seen.map(() => expect.stringMatching(/^environment \(SHIPLINE_BUILD_SECRET_0\) of \S*docker /))
        )
        expect(seen.length).toBeGreaterThan(0)
        expect(leftInConfig).toEqual([])
        expect(r.builder).toBe('docker build (classic builder with BuildKit; no buildx)')
        expect(await skopeoDigest(basic, `${o.image.image}:stage`)).toBe(r.digest)
        const sums = execFileSync('docker', ['run', '--rm', r.imageId, 'cat', '/sums', '/ssh'], {
          encoding: 'utf8'
        })
        expect(sums).toBe(
          `${sha256(value)}  /run/secrets/tok\n${sha256(envValue)}  /run/secrets/env\n${sha256(fileValue)}  /run/secrets/netrc\nssh-ok\n`
        )
        const argv = log.lines.find(l => /^docker build /.test(l))!
        expect(argv).toContain('--secret id=tok,env=SHIPLINE_BUILD_SECRET_0')
        expect(argv).toContain('--secret id=env,env=SHIPLINE_TEST_SECRET')
        expect(argv).toContain(`--ssh deploy=${key}`)
        expect(log.lines.join('\n')).not.toContain(value)
      } finally {
        delete process.env.SHIPLINE_TEST_SECRET
        c.remove()
        removeDockerConfig(o.config.dir)
      }
    }
  )

  ;(MODERN_CLI ? it : it.skip)(
    'secrets with a docker CLI that has BuildKit only through buildx: refused before building, naming the input',
    async () => {
      const log = recorder()
      const o = options(basic, { secrets: [{ id: 'tok', value: 'x-secret' }] })
      try {
        await expect(buildPush(o, log)).rejects.toThrow(
          /^Input 'secrets' needs BuildKit, which docker CLI \d+\.\S+ runs only through buildx, and this runner lacks buildx\. Add docker\/setup-buildx-action before this step/
        )
        await expect(buildPush({ ...o, secrets: [], ssh: ['default'] }, log)).rejects.toThrow(
          /^Input 'ssh' needs BuildKit/
        )
        expect(log.lines.filter(l => l.startsWith('group:'))).toEqual([])
      } finally {
        removeDockerConfig(o.config.dir)
      }
    }
  )

  it('what needs buildx, and push-by-digest without push, is refused before building', async () => {
    const log = recorder()
    const o = options(basic, { tags: planTags(SHA, 'stage', []) })
    try {
      const refused: [Partial<BuildPushOptions>, RegExp][] = [
        [
          { buildContexts: new Map([['base', 'docker-image://x']]) },
          /^Input 'build-contexts' needs buildx, .*docker\/setup-buildx-action/
        ],
        [{ pushByDigest: true }, /^Input 'push-by-digest' needs buildx, .*pushes tags only/],
        [{ pushByDigest: true, push: false }, /^Input 'push-by-digest' needs 'push: true'/],
        [
          { pushByDigest: true, tags: planTags(SHA, 'stage', ['v1']) },
          /^Input 'tags' \(v1\) cannot go with 'push-by-digest: true'/
        ],
        [
          { cacheTo: ['type=registry,ref=x/y:cache'] },
          /^Input 'cache-to' needs buildx, .*cannot export a cache/
        ],
        [{ cacheFrom: ['type=gha'] }, /^Input 'cache-from': 'type=gha' needs buildx/]
      ]
      for (const [over, message] of refused)
        await expect(buildPush({ ...o, ...over }, log)).rejects.toThrow(message)
      expect(log.lines.filter(l => l.startsWith('group:'))).toEqual([])
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('cache-from image references reach the classic docker build', async () => {
    const log = recorder()
    const o = options(basic, { push: false, login: undefined, tags: planTags(SHA, '', []) })
    try {
      const first = await buildPush(o, recorder())
      const r = await buildPush({ ...o, cacheFrom: [`type=registry,ref=${first.shaTag}`, first.shaTag] }, log)
      expect(log.lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`^docker build .*--cache-from ${first.shaTag} --cache-from ${first.shaTag} `)
        )
      )
      expect(r.imageId).toBe(first.imageId)
      expect(r.metadata).toEqual({
        'containerimage.config.digest': r.imageId,
        'image.name': r.tags.join(',')
      })
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('a missing Dockerfile or context says which', async () => {
    const o = options(basic)
    try {
      await expect(buildPush({ ...o, file: join(ctx.dir, 'Nope.Dockerfile') }, recorder())).rejects.toThrow(
        /Dockerfile '.*Nope.Dockerfile' not found/
      )
      await expect(buildPush({ ...o, context: join(ctx.dir, 'nope') }, recorder())).rejects.toThrow(
        /is not a folder/
      )
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })
})

/**
 * The buildx code path at the argument level (buildx cannot be installed here): the argv build-push hands
 * to `docker buildx build`, and to the classic `docker build`, for one BuildSpec.
 */
import { describe, expect, it } from '@jest/globals'
import {
  buildxArgs,
  cacheScope,
  canExportCache,
  classicBuildArgs,
  ghaCacheAvailable,
  needsBuildKit,
  parseBuildxDriver,
  pushedDigest,
  secretArgs,
  type BuildSpec
} from '../../src/lib/docker/build.js'

const SHA = 'f'.repeat(40)
const spec = (over: Partial<BuildSpec> = {}): BuildSpec => ({
  context: '/src',
  file: '/src/Dockerfile',
  tags: [`ghcr.io/o/app:${SHA}`, 'ghcr.io/o/app:stage'],
  labels: new Map([['org.opencontainers.image.revision', SHA]]),
  buildArgs: new Map([['VERSION', '1.2=3']]),
  platforms: [],
  push: true,
  metadataFile: '/tmp/m.json',
  iidFile: '/tmp/iid',
  ...over
})

describe('docker buildx build argv', () => {
  it('pushes, writes the metadata file and turns provenance off by default', () => {
    expect(buildxArgs(spec())).toEqual([
      'buildx',
      'build',
      '--file',
      '/src/Dockerfile',
      '--tag',
      `ghcr.io/o/app:${SHA}`,
      '--tag',
      'ghcr.io/o/app:stage',
      '--label',
      `org.opencontainers.image.revision=${SHA}`,
      '--build-arg',
      'VERSION=1.2=3',
      '--provenance=false',
      '--metadata-file',
      '/tmp/m.json',
      '--iidfile',
      '/tmp/iid',
      '--push',
      '/src'
    ])
  })
  it('passes platforms as one comma list and a provenance mode as given', () => {
    const a = buildxArgs(
      spec({ platforms: ['linux/amd64', 'linux/arm64'], provenance: 'mode=max', target: 'runtime' })
    )
    expect(a).toEqual(
      expect.arrayContaining([
        '--platform',
        'linux/amd64,linux/arm64',
        '--provenance=mode=max',
        '--target',
        'runtime'
      ])
    )
    expect(a.indexOf('--platform')).toBe(a.indexOf('linux/amd64,linux/arm64') - 1)
  })
  it('uses the gha cache with a scope per image, exporting only when the builder can', () => {
    const scope = cacheScope('ghcr.io/o/app/api')
    expect(scope).toBe('ghcr.io-o-app-api')
    const a = buildxArgs(spec({ ghaCacheScope: scope }))
    expect(a).toEqual(
      expect.arrayContaining([
        '--cache-from',
        `type=gha,scope=${scope}`,
        '--cache-to',
        `type=gha,mode=max,scope=${scope}`
      ])
    )
    const b = buildxArgs(spec({ ghaCacheScope: scope, ghaCacheExport: false }))
    expect(b).toContain('--cache-from')
    expect(b).not.toContain('--cache-to')
    expect(buildxArgs(spec())).not.toContain('--cache-from')
  })
  it('loads a single-platform image when not pushing, and neither pushes nor loads several platforms', () => {
    const one = buildxArgs(spec({ push: false }))
    expect(one).toContain('--load')
    expect(one).not.toContain('--push')
    const many = buildxArgs(spec({ push: false, platforms: ['linux/amd64', 'linux/arm64'] }))
    expect(many).not.toContain('--load')
    expect(many).not.toContain('--push')
  })
  it('ends with the context, after every option', () => {
    expect(buildxArgs(spec()).at(-1)).toBe('/src')
    expect(classicBuildArgs(spec()).at(-1)).toBe('/src')
  })
})

describe('secrets, ssh, contexts, caches, push by digest', () => {
  const VALUE = 'ghp_s3cr3t-value'
  it('a secret value travels in the environment, never in argv; env and file secrets by name', () => {
    const s = secretArgs([
      { id: 'tok', value: VALUE },
      { id: 'aws', env: 'AWS_KEY' },
      { id: 'npmrc', src: '/w/.npmrc' }
    ])
    expect(s).toEqual({
      flags: ['id=tok,env=SHIPLINE_BUILD_SECRET_0', 'id=aws,env=AWS_KEY', 'id=npmrc,src=/w/.npmrc'],
      env: { SHIPLINE_BUILD_SECRET_0: VALUE }
    })
    const withSecrets = spec({ secrets: s.flags, ssh: ['default', 'k=/w/key'] })
    for (const a of [buildxArgs(withSecrets), classicBuildArgs(withSecrets)]) {
      expect(a.join(' ')).not.toContain(VALUE)
      expect(a).toEqual(
        expect.arrayContaining([
          '--secret',
          'id=tok,env=SHIPLINE_BUILD_SECRET_0',
          '--ssh',
          'default',
          '--ssh',
          'k=/w/key'
        ])
      )
    }
    expect(needsBuildKit(withSecrets)).toBe(true)
    expect(needsBuildKit(spec())).toBe(false)
  })
  it('passes build contexts and explicit caches to buildx; the classic builder gets cache-from only', () => {
    const s = spec({
      buildContexts: new Map([['base', 'docker-image://alpine:3']]),
      cacheFrom: ['type=registry,ref=r/app:cache'],
      cacheTo: ['type=registry,ref=r/app:cache,mode=max']
    })
    expect(buildxArgs(s)).toEqual(
      expect.arrayContaining([
        '--build-context',
        'base=docker-image://alpine:3',
        '--cache-from',
        'type=registry,ref=r/app:cache',
        '--cache-to',
        'type=registry,ref=r/app:cache,mode=max'
      ])
    )
    const c = classicBuildArgs({ ...s, cacheTo: [], buildContexts: undefined, cacheFrom: ['r/app:cache'] })
    expect(c).toEqual(expect.arrayContaining(['--cache-from', 'r/app:cache']))
    expect(c).not.toContain('--build-context')
  })
  it('pushes by digest with an image output and no tag', () => {
    const a = buildxArgs(spec({ tags: [], pushByDigest: 'ghcr.io/o/app' }))
    expect(a).toEqual(
      expect.arrayContaining([
        '--output',
        'type=image,name=ghcr.io/o/app,push-by-digest=true,name-canonical=true,push=true'
      ])
    )
    expect(a).not.toContain('--tag')
    expect(a).not.toContain('--push')
    expect(a).not.toContain('--load')
  })
})

describe('classic docker build argv', () => {
  it('builds and tags; pushing is separate; one platform only', () => {
    expect(classicBuildArgs(spec({ platforms: ['linux/amd64'] }))).toEqual([
      'build',
      '--file',
      '/src/Dockerfile',
      '--tag',
      `ghcr.io/o/app:${SHA}`,
      '--tag',
      'ghcr.io/o/app:stage',
      '--label',
      `org.opencontainers.image.revision=${SHA}`,
      '--build-arg',
      'VERSION=1.2=3',
      '--platform',
      'linux/amd64',
      '--iidfile',
      '/tmp/iid',
      '/src'
    ])
    expect(classicBuildArgs(spec())).not.toContain('--push')
  })
})

describe('buildx facts', () => {
  it('knows when the gha cache service is there', () => {
    expect(ghaCacheAvailable({ ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_CACHE_URL: 'https://x' })).toBe(true)
    expect(ghaCacheAvailable({ ACTIONS_RUNTIME_TOKEN: 't', ACTIONS_RESULTS_URL: 'https://x' })).toBe(true)
    expect(ghaCacheAvailable({ ACTIONS_CACHE_URL: 'https://x' })).toBe(false)
  })
  it('reads the current builder driver from buildx inspect', () => {
    const inspect =
      'Name:          builder-1\nDriver:        docker-container\nLast Activity: 2026-01-01\n\nNodes:\nName:      builder-10\n'
    expect(parseBuildxDriver(inspect)).toBe('docker-container')
    expect(canExportCache({ version: 'v0.12', driver: 'docker' })).toBe(false)
    expect(canExportCache({ version: 'v0.12', driver: 'docker-container' })).toBe(true)
  })
  it('reads the digest docker push prints', () => {
    const d = `sha256:${'1'.repeat(64)}`
    expect(pushedDigest(`stage: digest: ${d} size: 736\n`)).toBe(d)
    expect(pushedDigest('nothing')).toBeUndefined()
  })
})

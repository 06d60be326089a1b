/** Tag computation, image naming and labels: the pure parts of build-push. */
import { afterAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { commitSha, planTags, validateTag } from '../../src/lib/build/tags.js'
import { defaultImage, loginRegistry, normalizeImage } from '../../src/lib/build/naming.js'
import { createdTime, ociLabels } from '../../src/lib/build/labels.js'
import { UserError } from '../../src/lib/errors.js'

const A = 'a'.repeat(40)
const B = 'b'.repeat(40)

describe('commit SHA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-bp-plan-'))
  const event = join(dir, 'event.json')
  writeFileSync(event, JSON.stringify({ pull_request: { head: { sha: B.toUpperCase() } } }))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('is GITHUB_SHA on push', () => {
    expect(commitSha({ input: '', eventName: 'push', eventPath: event, githubSha: A })).toEqual({
      sha: A,
      from: 'GITHUB_SHA'
    })
  })
  it('is the pull request head on pull_request (GITHUB_SHA is the merge commit), lowercased', () => {
    expect(commitSha({ input: '', eventName: 'pull_request', eventPath: event, githubSha: A }).sha).toBe(B)
    expect(
      commitSha({ input: '', eventName: 'pull_request_target', eventPath: event, githubSha: A }).sha
    ).toBe(B)
  })
  it('is the sha input when given', () => {
    expect(
      commitSha({ input: ` ${'c'.repeat(40)} `, eventName: 'pull_request', eventPath: event, githubSha: A })
        .sha
    ).toBe('c'.repeat(40))
  })
  it('must be a full 40-hex SHA', () => {
    expect(() => commitSha({ input: 'abc1234', githubSha: A })).toThrow(
      /'abc1234', not a full 40-hex commit SHA/
    )
    expect(() => commitSha({ input: '' })).toThrow(UserError)
  })
  it('falls back to GITHUB_SHA when the payload is unreadable', () => {
    expect(
      commitSha({ input: '', eventName: 'pull_request', eventPath: join(dir, 'missing.json'), githubSha: A })
        .sha
    ).toBe(A)
  })
})

describe('tags', () => {
  it('SHA tag first, stage tag, extras, no duplicates', () => {
    expect(planTags(A, 'stage', ['v1.2.3', 'stage', 'latest'])).toEqual({
      shaTag: A,
      stageTag: 'stage',
      all: [A, 'stage', 'v1.2.3', 'latest']
    })
  })
  it('an empty stage tag means none', () => {
    expect(planTags(A, '  ', []).all).toEqual([A])
  })
  it.each([
    ['v1:2', /contains ':'/],
    ['-dash', /starts with \. or -/],
    ['.dot', /starts with \. or -/],
    ['x'.repeat(129), /129 characters long/],
    ['a b', /contains ' '/],
    ['ünï', /contains 'ü'/]
  ])('rejects %s with a clear error', (tag, why) => {
    expect(() => planTags(A, 'stage', [tag])).toThrow(why)
    expect(() => planTags(A, 'stage', [tag])).toThrow(/^Input 'tags': '.*' is not a valid image tag/)
  })
  it('takes full references of this image too (docker/metadata-action output), not of another', () => {
    expect(
      planTags(A, '', ['ghcr.io/o/app:v1', 'GHCR.io/O/App:latest', 'edge'], 'ghcr.io/o/app').all
    ).toEqual([A, 'v1', 'latest', 'edge'])
    expect(() => planTags(A, '', ['ghcr.io/o/other:v1'], 'ghcr.io/o/app')).toThrow(
      /^Input 'tags': 'ghcr.io\/o\/other:v1' is a reference to ghcr.io\/o\/other, not to ghcr.io\/o\/app/
    )
    expect(() => planTags(A, '', ['ghcr.io/o/app:bad tag'], 'ghcr.io/o/app')).toThrow(/not a valid image tag/)
    expect(planTags(A, '', ['127.0.0.1:5000/o/app:v2'], '127.0.0.1:5000/o/app').all).toEqual([A, 'v2'])
    expect(() => planTags(A, '', ['127.0.0.1:5000/o/app'], '127.0.0.1:5000/o/app')).toThrow(
      /not a valid image tag: it contains ':'/
    )
  })
  it('validates the stage tag under its own name', () => {
    expect(() => planTags(A, 'stage/prod', [])).toThrow(/^Input 'stage-tag'/)
  })
  it('accepts the whole grammar', () => {
    for (const t of ['_x', '0', 'A.b-c_d', 'x'.repeat(128)]) expect(validateTag('tags', t)).toBe(t)
  })
})

describe('image name', () => {
  it('defaults to ghcr.io/<owner>/<repo>[/<service>]', () => {
    expect(defaultImage('Owner/Repo', '')).toBe('ghcr.io/Owner/Repo')
    expect(defaultImage('owner/repo', 'api')).toBe('ghcr.io/owner/repo/api')
    expect(() => defaultImage(undefined, '')).toThrow(/GITHUB_REPOSITORY/)
  })
  it('is lowercased, and says so', () => {
    expect(normalizeImage('ghcr.io/MyOrg/My-App')).toEqual({
      image: 'ghcr.io/myorg/my-app',
      registry: 'ghcr.io',
      path: 'myorg/my-app',
      lowercasedFrom: 'ghcr.io/MyOrg/My-App'
    })
  })
  it('knows registry hosts with ports and Docker Hub names', () => {
    expect(normalizeImage('127.0.0.1:5000/team/app')).toMatchObject({
      registry: '127.0.0.1:5000',
      path: 'team/app'
    })
    expect(normalizeImage('localhost/app')).toMatchObject({ registry: 'localhost', path: 'app' })
    expect(normalizeImage('user/app')).toMatchObject({
      image: 'user/app',
      registry: 'docker.io',
      path: 'user/app'
    })
    expect(normalizeImage('app')).toMatchObject({ image: 'app', registry: 'docker.io', path: 'library/app' })
    expect(normalizeImage('docker.io/user/app')).toMatchObject({
      image: 'docker.io/user/app',
      registry: 'docker.io',
      path: 'user/app'
    })
  })
  it('refuses tags, digests and bad components with a fix', () => {
    expect(() => normalizeImage('ghcr.io/o/app:latest')).toThrow(/without a tag.*Put tags in 'tags'/)
    expect(() => normalizeImage(`ghcr.io/o/app@sha256:${'0'.repeat(64)}`)).toThrow(/without a digest/)
    expect(() => normalizeImage('ghcr.io/o/-app')).toThrow(
      /^Input 'image': 'ghcr.io\/o\/-app' is not a valid repository name; each path component/
    )
    expect(() => normalizeImage('ghcr.io/o//app')).toThrow(/not a valid repository name/)
    expect(() => normalizeImage('https://ghcr.io/o/app')).toThrow(/without a scheme/)
    expect(() => normalizeImage('  ')).toThrow(/is empty/)
  })
})

describe('login registry', () => {
  it('is the image host by default; Docker Hub aliases and URLs are normalised', () => {
    const ghcr = normalizeImage('ghcr.io/o/app')
    expect(loginRegistry('', ghcr)).toEqual({ registry: 'ghcr.io' })
    expect(loginRegistry('https://GHCR.io/', ghcr)).toEqual({ registry: 'ghcr.io' })
    const hub = normalizeImage('user/app')
    for (const r of ['docker.io', 'index.docker.io', 'https://index.docker.io/v1/', 'registry-1.docker.io']) {
      expect(loginRegistry(r, hub)).toEqual({ registry: 'docker.io' })
    }
  })
  it('warns when it is not where the image goes', () => {
    expect(loginRegistry('quay.io', normalizeImage('ghcr.io/o/app')).warning).toMatch(
      /^'registry' is quay\.io but the image is pushed to ghcr\.io/
    )
  })
})

describe('labels', () => {
  it('sets source, revision and created; the user may override', () => {
    const l = ociLabels(
      {
        serverUrl: 'https://github.com/',
        repository: 'o/r',
        sha: A,
        now: new Date('2026-01-02T03:04:05.678Z')
      },
      new Map([
        ['org.opencontainers.image.source', 'https://example.com/x'],
        ['team', 'core']
      ])
    )
    expect(Object.fromEntries(l)).toEqual({
      'org.opencontainers.image.source': 'https://example.com/x',
      'org.opencontainers.image.revision': A,
      'org.opencontainers.image.created': '2026-01-02T03:04:05Z',
      team: 'core'
    })
    expect(ociLabels({ repository: 'o/r', sha: A }, new Map()).get('org.opencontainers.image.source')).toBe(
      'https://github.com/o/r'
    )
  })
  it('respects SOURCE_DATE_EPOCH', () => {
    expect(createdTime('1700000000')).toBe('2023-11-14T22:13:20Z')
    expect(() => createdTime('yesterday')).toThrow(/SOURCE_DATE_EPOCH/)
  })
})

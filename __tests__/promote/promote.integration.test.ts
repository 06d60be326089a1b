/**
 * promote on real parts: a real docker-registry (htpasswd), an image pushed by the real dockerd, and
 * images and a two-platform index assembled through the API. The registry's own access log is the
 * witness for "no blob uploaded" and "no write at all".
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { OCI_MANIFEST, sha256 } from '../../src/lib/registry/media.js'
import { promote, type PromoteOptions } from '../../src/lib/registry/promote.js'
import { removeImages } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import {
  dockerPushApp,
  dockerRepoDigest,
  dockerWithLogin,
  pushImage,
  pushIndex
} from '../registry/helpers.js'

let reg: TestRegistry
let client: RegistryClient
let repo = ''
let digest = ''
const images: string[] = []

const writes = (since: number): { method: string; path: string; status: number }[] =>
  reg
    .requests()
    .slice(since)
    .filter(r => !['GET', 'HEAD'].includes(r.method))

function run(
  o: Partial<PromoteOptions> & Pick<PromoteOptions, 'from' | 'toTags'>
): ReturnType<typeof promote> {
  const c = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
  return promote({ client: c, registry: reg.host, sourceRepository: repo, targetRepository: repo, ...o })
}

beforeAll(async () => {
  reg = await startRegistry({ auth: 'htpasswd' })
  client = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
  repo = `team/${uniqueName('app')}`
  images.push(dockerPushApp(reg, repo, 'v1'))
  digest = (await client.resolve(repo, 'v1')).digest
})
afterAll(async () => {
  removeImages(...images)
  await reg?.stop()
})

describe('promote in one repository', () => {
  it('puts only manifests: no blob traffic at all', async () => {
    const mark = reg.requests().length
    const r = await run({ from: 'v1', toTags: ['stage', 'prod'] })
    expect(r.digest).toBe(digest)
    expect(r.changed).toBe(true)
    expect(r.previousDigest).toBe('')
    expect(r.sourceRef).toBe(`${reg.host}/${repo}@${digest}`)
    expect(r.targets.map(t => [t.ref, t.action])).toEqual([
      [`${reg.host}/${repo}:stage`, 'created'],
      [`${reg.host}/${repo}:prod`, 'created']
    ])
    expect(writes(mark).map(w => `${w.method} ${w.path} ${w.status}`)).toEqual([
      `PUT /v2/${repo}/manifests/stage 201`,
      `PUT /v2/${repo}/manifests/prod 201`
    ])
    expect(
      reg
        .requests()
        .slice(mark)
        .some(q => q.path.includes('/blobs/'))
    ).toBe(false)
  })

  it('is a no-op on a re-run: changed=false and nothing written', async () => {
    const mark = reg.requests().length
    const r = await run({ from: 'v1', toTags: ['stage', 'prod'] })
    expect(r.changed).toBe(false)
    expect(r.previousDigest).toBe(digest)
    expect(r.targets.every(t => t.action === 'unchanged')).toBe(true)
    expect(writes(mark)).toEqual([])
  })

  it('moves a tag from a digest and reports what it pointed to before', async () => {
    const other = await pushImage(client, repo, 'v2')
    const r = await run({ from: other.digest, toTags: ['prod'] })
    expect(r.previousDigest).toBe(digest)
    expect(r.targets[0].action).toBe('moved')
    expect((await client.headManifest(repo, 'prod'))?.digest).toBe(other.digest)
    // and back: "a rollback is pointing the tag back"
    expect((await run({ from: 'v1', toTags: ['prod'] })).previousDigest).toBe(other.digest)
  })

  it('refuses to move a full commit SHA tag, and writes nothing', async () => {
    const sha = '0123456789abcdef0123456789abcdef01234567'
    await run({ from: 'v1', toTags: [sha] })
    const mark = reg.requests().length
    await expect(run({ from: 'v2', toTags: ['stage', sha] })).rejects.toThrow(
      `${reg.host}/${repo}:${sha} is a commit SHA tag and already points at ${digest}; SHA tags are immutable`
    )
    expect(writes(mark)).toEqual([])
    expect((await client.headManifest(repo, sha))?.digest).toBe(digest)
    // the same digest again is fine
    expect((await run({ from: 'v1', toTags: [sha] })).changed).toBe(false)
  })

  it('names a missing source tag', async () => {
    await expect(run({ from: 'no-such-tag', toTags: ['prod'] })).rejects.toThrow(
      `${reg.host}/${repo}:no-such-tag was not found (404): check that the tag exists (push it first) and that the image name is right.`
    )
  })

  it('refuses invalid tags before talking to the registry', async () => {
    const mark = reg.requests().length
    await expect(run({ from: 'v1', toTags: ['-prod'] })).rejects.toThrow(
      /to-tags: '-prod' is not a valid tag/
    )
    await expect(run({ from: 'v1', toTags: ['has space'] })).rejects.toThrow(/not a valid tag/)
    await expect(run({ from: 'sha256:1234', toTags: ['prod'] })).rejects.toThrow(/not a valid digest/)
    await expect(run({ from: 'v1', toTags: [] })).rejects.toThrow(/to-tags' is empty/)
    expect(reg.requests().length).toBe(mark)
  })

  it('says to check the credentials on a wrong password', async () => {
    const bad = new RegistryClient({ registry: reg.host, username: reg.username, password: 'wrong' })
    await expect(
      promote({
        client: bad,
        registry: reg.host,
        sourceRepository: repo,
        targetRepository: repo,
        from: 'v1',
        toTags: ['x']
      })
    ).rejects.toThrow(/refused the credentials \(401\) .*check registry-username and registry-password/)
  })
})

describe('promote across repositories', () => {
  it('mounts every blob: the registry log shows no upload', async () => {
    const dst = `${repo}-prod`
    const mark = reg.requests().length
    const r = await run({ from: 'v1', toTags: ['prod'], targetRepository: dst })
    expect(r.digest).toBe(digest)
    expect(r.blobsUploaded).toBe(0)
    const w = writes(mark)
    const mounts = w.filter(q => q.method === 'POST' && q.path.includes('mount='))
    expect(mounts.length).toBe(r.blobsMounted)
    expect(mounts.every(q => q.status === 201)).toBe(true)
    expect(
      w.some(q => q.method === 'PATCH' || (q.method === 'PUT' && q.path.includes('/blobs/uploads/')))
    ).toBe(false)
    expect(w.filter(q => q.method === 'PUT').map(q => q.path)).toEqual([`/v2/${dst}/manifests/prod`])
    // the copy is the same image: the real dockerd pulls it by the same digest, with no local copy to lean on
    expect((await client.resolve(dst, 'prod')).bytes.equals((await client.resolve(repo, 'v1')).bytes)).toBe(
      true
    )
    const pulled = `${reg.host}/${dst}:prod`
    images.push(pulled)
    removeImages(`${reg.host}/${repo}:v1`)
    dockerWithLogin(reg, ['pull', pulled])
    expect(dockerRepoDigest(pulled)).toBe(digest)
  })

  it('keeps a two-platform index, its digest and its children', async () => {
    const idx = await pushIndex(client, repo, 'multi')
    const dst = `${repo}-multi`
    const mark = reg.requests().length
    const r = await run({ from: 'multi', toTags: ['prod'], targetRepository: dst })
    expect(r.digest).toBe(idx.digest)
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64'])
    expect(r.manifestsCopied).toBe(2)
    const back = await client.getManifest(dst, 'prod')
    expect(back.bytes.equals(idx.bytes)).toBe(true)
    for (const child of idx.children)
      expect((await client.headManifest(dst, child.digest))?.digest).toBe(child.digest)
    const puts = writes(mark)
      .filter(q => q.method === 'PUT')
      .map(q => q.path)
    // children first (by digest), the index last
    expect(puts.slice(-1)).toEqual([`/v2/${dst}/manifests/prod`])
    expect(puts.slice(0, 2).sort()).toEqual(idx.children.map(c => `/v2/${dst}/manifests/${c.digest}`).sort())
    expect(
      writes(mark).some(
        q => q.method === 'PATCH' || (q.path.includes('/blobs/uploads/') && q.method === 'PUT')
      )
    ).toBe(false)
  })

  it('carries cosign signature and attestation tags', async () => {
    const signed = await pushImage(client, repo, 'signed')
    const sigTag = `${signed.digest.replace(':', '-')}.sig`
    const sig = await pushImage(client, repo, sigTag, { layers: 1, layerBytes: 300 })
    const r = await run({ from: 'signed', toTags: ['prod'], targetRepository: `${repo}-signed` })
    expect(r.signatures).toEqual([sigTag])
    expect((await client.headManifest(`${repo}-signed`, sigTag))?.digest).toBe(sig.digest)
    expect(sha256(sig.bytes)).toBe(sig.digest)
    expect(sig.mediaType).toBe(OCI_MANIFEST)
  })
})

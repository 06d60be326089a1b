/**
 * promote merge and OCI referrers on a real docker-registry (htpasswd, and token auth): single-platform
 * images pushed by digest are merged into one OCI index registry-side; the registry's access log is the
 * witness that no blob was uploaded. Referrers go through the tag schema (docker-registry 2.8 has no
 * Referrers API); the API path is played by a small front answering `/referrers/`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { OCI_INDEX } from '../../src/lib/registry/media.js'
import { merge, type MergeOptions } from '../../src/lib/registry/merge.js'
import { promote } from '../../src/lib/registry/promote.js'
import {
  hasAttestation,
  IN_TOTO,
  listReferrers,
  pushReferrer,
  referrersTag
} from '../../src/lib/registry/referrers.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistryFront } from '../../src/testkit/registry-front.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { pushImage, pushIndex } from '../registry/helpers.js'

let reg: TestRegistry
let client: RegistryClient
let repo = ''

const fresh = (r: TestRegistry = reg): RegistryClient =>
  new RegistryClient({ registry: r.host, username: r.username, password: r.password })
/** The registry's access-log length once it has stopped growing (its lines land a moment after the answers). */
async function settled(r: TestRegistry = reg): Promise<number> {
  for (let n = -1; ;) {
    await new Promise(res => setTimeout(res, 50))
    const now = r.requests().length
    if (now === n) return now
    n = now
  }
}
/** The writes the registry logged since `since`, once its log has settled. */
async function writes(since: number, r: TestRegistry = reg): Promise<string[]> {
  await settled(r)
  return r
    .requests()
    .slice(since)
    .filter(q => !['GET', 'HEAD'].includes(q.method))
    .map(q => `${q.method} ${q.path} ${q.status}`)
}
const blobWrites = (w: string[]): string[] => w.filter(l => l.includes('/blobs/'))
const run = (o: Partial<MergeOptions> & Pick<MergeOptions, 'children'>): ReturnType<typeof merge> =>
  merge({ client: fresh(), registry: reg.host, targetRepository: repo, tags: ['v1'], ...o })
const kids = (...digests: string[]): MergeOptions['children'] =>
  digests.map(digest => ({ repository: repo, digest }))
const statement = (n: string): Buffer =>
  Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v1',
      predicateType: 'https://slsa.dev/provenance/v1',
      n
    })
  )

beforeAll(async () => {
  reg = await startRegistry({ auth: 'htpasswd' })
  client = fresh()
  repo = `team/${uniqueName('multi')}`
})
afterAll(async () => {
  await reg?.stop()
})

describe('merge in one repository', () => {
  it('makes one OCI index of images pushed by digest: children byte-identical, 0 blob bytes moved', async () => {
    const amd = await pushImage(client, repo, '', { arch: 'amd64' })
    const arm = await pushImage(client, repo, '', { arch: 'arm64', variant: 'v8' })
    const sha = 'a'.repeat(40)
    const mark = await settled()
    const r = await run({
      children: kids(arm.digest, amd.digest),
      tags: [sha, 'stage']
    })
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64/v8'])
    expect(r.blobBytesUploaded).toBe(0)
    expect(r.blobsMounted + r.blobsUploaded + r.manifestsCopied).toBe(0)
    // only the two tags were written: no blob request, no child manifest PUT
    expect(await writes(mark)).toEqual([
      `PUT /v2/${repo}/manifests/${sha} 201`,
      `PUT /v2/${repo}/manifests/stage 201`
    ])
    const index = await client.getManifest(repo, 'stage')
    expect(index.digest).toBe(r.digest)
    expect(index.mediaType).toBe(OCI_INDEX)
    expect(r.sourceRef).toBe(`${reg.host}/${repo}@${r.digest}`)
    const body = JSON.parse(index.bytes.toString()) as {
      manifests: { digest: string; size: number; platform: Record<string, string> }[]
    }
    expect(body.manifests.map(m => [m.digest, m.size, m.platform])).toEqual([
      [amd.digest, amd.bytes.length, { architecture: 'amd64', os: 'linux' }],
      [arm.digest, arm.bytes.length, { architecture: 'arm64', os: 'linux', variant: 'v8' }]
    ])
    for (const pushed of [amd, arm])
      expect((await client.getManifest(repo, pushed.digest)).bytes.equals(pushed.bytes)).toBe(true)

    // the same images in another order: the same index, nothing written
    const again = await settled()
    const r2 = await run({
      children: kids(amd.digest, arm.digest),
      tags: [sha, 'stage']
    })
    expect(r2.digest).toBe(r.digest)
    expect(r2.changed).toBe(false)
    expect(await writes(again)).toEqual([])
  })

  it('refuses two images of one platform, naming both and the input', async () => {
    const a = await pushImage(client, repo, '', { arch: 'amd64' })
    const b = await pushImage(client, repo, '', { arch: 'amd64' })
    const mark = await settled()
    await expect(
      run({
        children: kids(a.digest, b.digest)
      })
    ).rejects.toThrow(
      /^Input 'merge': .*@sha256:[0-9a-f]{64} and .*@sha256:[0-9a-f]{64} are both linux\/amd64; an index holds one image per platform/
    )
    expect(await writes(mark)).toEqual([])
  })

  it('refuses a child that is an index, and one without a platform', async () => {
    const idx = await pushIndex(client, repo, uniqueName('idx'))
    const arm = await pushImage(client, repo, '', { arch: 'arm64' })
    await expect(
      run({
        children: kids(idx.digest, arm.digest)
      })
    ).rejects.toThrow(
      `merge: ${reg.host}/${repo}@${idx.digest} is an image index (${OCI_INDEX}), not a single-platform image`
    )
    const bare = await pushImage(client, repo, '', { os: '' })
    await expect(
      run({
        children: kids(bare.digest, arm.digest)
      })
    ).rejects.toThrow(
      `merge: ${reg.host}/${repo}@${bare.digest} has no platform (os and architecture) in its config`
    )
  })

  it('refuses bad input before any request', async () => {
    const d = `sha256:${'b'.repeat(64)}`
    // one client for all four: its own count of requests is the witness (the registry's log lags under load)
    const client = fresh()
    await expect(run({ client, children: [{ repository: repo, digest: d }] })).rejects.toThrow(
      /^Input 'merge' needs at least two image digests \(one per platform\), got 1/
    )
    await expect(
      run({
        client,
        children: [
          { repository: repo, digest: d },
          { repository: `${repo}-x`, digest: d }
        ]
      })
    ).rejects.toThrow(`Input 'merge' names ${d} twice`)
    await expect(run({ client, children: kids(d, 'sha256:12') })).rejects.toThrow(
      /^merge: 'sha256:12' is not a valid digest/
    )
    await expect(
      run({
        client,
        children: [
          { repository: repo, digest: d },
          { repository: repo, digest: `sha256:${'c'.repeat(64)}` }
        ],
        tags: []
      })
    ).rejects.toThrow(/to-tags' is empty/)
    expect(client.stats.requests).toBe(0)
  })
})

describe('merge across repositories', () => {
  it("mounts each child's blobs into the target, puts the same manifests by digest, and carries their referrers", async () => {
    const amdRepo = `${repo}-amd64`
    const armRepo = `${repo}-arm64`
    const amd = await pushImage(client, amdRepo, '', { arch: 'amd64' })
    const arm = await pushImage(client, armRepo, '', { arch: 'arm64' })
    const att = await pushReferrer({
      client,
      repository: amdRepo,
      subject: amd.digest,
      artifactType: IN_TOTO,
      payload: statement('amd')
    })
    const dst = `${repo}-merged`
    const mark = await settled()
    const r = await run({
      children: [
        { repository: amdRepo, digest: amd.digest },
        { repository: armRepo, digest: arm.digest }
      ],
      targetRepository: dst,
      tags: ['prod']
    })
    const w = await writes(mark)
    expect(r.blobBytesUploaded).toBe(0)
    expect(r.blobsUploaded).toBe(0)
    expect(blobWrites(w).every(l => /^POST .*mount=.* 201$/.test(l))).toBe(true)
    expect(blobWrites(w).length).toBe(r.blobsMounted)
    for (const pushed of [amd, arm])
      expect((await client.getManifest(dst, pushed.digest)).bytes.equals(pushed.bytes)).toBe(true)
    expect(r.referrersCopied).toBe(1)
    const there = await listReferrers(client, dst, amd.digest)
    expect(there).toEqual({ api: false, referrers: [att.descriptor] })
    expect(await hasAttestation(client, dst, amd.digest)).toBe(true)
    expect(await hasAttestation(client, dst, arm.digest)).toBe(false)
    // an index is attested when every image of it is
    expect(await hasAttestation(client, dst, r.digest)).toBe(false)
    await pushReferrer({
      client,
      repository: dst,
      subject: arm.digest,
      artifactType: IN_TOTO,
      payload: statement('arm')
    })
    expect(await hasAttestation(client, dst, r.digest)).toBe(true)
  })

  it("carries the index's own referrers from where the same index was made before", async () => {
    const amdRepo = `${repo}-first-amd64`
    const armRepo = `${repo}-first-arm64`
    const amd = await pushImage(client, amdRepo, '', { arch: 'amd64' })
    const arm = await pushImage(client, armRepo, '', { arch: 'arm64' })
    const children = [
      { repository: amdRepo, digest: amd.digest },
      { repository: armRepo, digest: arm.digest }
    ]
    // first made in the amd64 repository, and attested there as a whole
    const first = await run({ children, targetRepository: amdRepo, tags: ['stage'] })
    const att = await pushReferrer({
      client,
      repository: amdRepo,
      subject: first.digest,
      artifactType: IN_TOTO,
      payload: statement('index')
    })
    const again = await run({ children, targetRepository: `${repo}-final`, tags: ['prod'] })
    expect(again.digest).toBe(first.digest)
    expect(again.referrersCopied).toBe(1)
    expect((await listReferrers(client, `${repo}-final`, first.digest)).referrers).toEqual([att.descriptor])
  })
})

describe('referrers (tag schema on docker-registry 2.8)', () => {
  it('pushes, lists and dedups attestations without touching the image', async () => {
    const img = await pushImage(client, repo, uniqueName('att'))
    expect(await hasAttestation(client, repo, img.digest)).toBe(false)
    const one = await pushReferrer({
      client,
      repository: repo,
      subject: img.digest,
      artifactType: IN_TOTO,
      payload: statement('1')
    })
    expect(one.api).toBe(false)
    expect(one.tag).toBe(referrersTag(img.digest))
    expect(one.tag).toBe(`sha256-${img.digest.slice(7)}`)
    // the same statement again: the same manifest, listed once
    const same = await pushReferrer({
      client,
      repository: repo,
      subject: img.digest,
      artifactType: IN_TOTO,
      payload: statement('1')
    })
    expect(same.digest).toBe(one.digest)
    const sbom = await pushReferrer({
      client,
      repository: repo,
      subject: img.digest,
      artifactType: 'application/spdx+json',
      payload: Buffer.from('{"spdxVersion":"SPDX-2.3"}')
    })
    const all = await listReferrers(client, repo, img.digest)
    expect(all.referrers.map(d => [d.digest, d.artifactType])).toEqual([
      [one.digest, IN_TOTO],
      [sbom.digest, 'application/spdx+json']
    ])
    expect((await listReferrers(client, repo, img.digest, { artifactType: IN_TOTO })).referrers).toEqual([
      one.descriptor
    ])
    expect(await hasAttestation(client, repo, img.digest)).toBe(true)
    const m = JSON.parse((await client.getManifest(repo, one.digest)).bytes.toString()) as {
      subject: { digest: string }
      artifactType: string
    }
    expect(m.subject.digest).toBe(img.digest)
    expect(m.artifactType).toBe(IN_TOTO)
  })

  it('promote carries referrers to another repository, once', async () => {
    const tag = uniqueName('src')
    const img = await pushImage(client, repo, tag)
    const att = await pushReferrer({
      client,
      repository: repo,
      subject: img.digest,
      artifactType: IN_TOTO,
      payload: statement('p')
    })
    const dst = `${repo}-prod`
    const go = (): ReturnType<typeof promote> =>
      promote({
        client: fresh(),
        registry: reg.host,
        sourceRepository: repo,
        from: tag,
        targetRepository: dst,
        toTags: ['prod']
      })
    const r = await go()
    expect(r.referrersCopied).toBe(1)
    expect(r.blobBytesUploaded).toBe(0)
    expect((await listReferrers(client, dst, img.digest)).referrers).toEqual([att.descriptor])
    const mark = await settled()
    const again = await go()
    expect(again.referrersCopied).toBe(0)
    expect(await writes(mark)).toEqual([])
  })

  it("promote of an index carries its children's referrers too", async () => {
    const idx = await pushIndex(client, repo, uniqueName('idx'))
    const att = await pushReferrer({
      client,
      repository: repo,
      subject: idx.children[1].digest,
      artifactType: IN_TOTO,
      payload: statement('child')
    })
    const dst = `${repo}-idx-prod`
    const r = await promote({
      client: fresh(),
      registry: reg.host,
      sourceRepository: repo,
      from: idx.digest,
      targetRepository: dst,
      toTags: ['prod']
    })
    expect(r.referrersCopied).toBe(1)
    expect((await listReferrers(client, dst, idx.children[1].digest)).referrers).toEqual([att.descriptor])
    expect(await hasAttestation(client, dst, idx.digest)).toBe(false)
  })

  it('uses the Referrers API when the registry offers one (a front answering /referrers/)', async () => {
    const img = await pushImage(client, repo, uniqueName('api'))
    const listed = {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${'d'.repeat(64)}`,
          size: 500,
          artifactType: IN_TOTO
        },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${'e'.repeat(64)}`,
          size: 400,
          artifactType: 'application/spdx+json'
        }
      ]
    }
    const front = await startRegistryFront(reg.url, [
      {
        method: 'GET',
        path: /\/referrers\//,
        respond: (_req, res) => {
          res.writeHead(200, { 'content-type': OCI_INDEX })
          res.end(JSON.stringify(listed))
        }
      }
    ])
    try {
      const c = new RegistryClient({ registry: front.host, username: reg.username, password: reg.password })
      const mark = await settled()
      const pushed = await pushReferrer({
        client: c,
        repository: repo,
        subject: img.digest,
        artifactType: IN_TOTO,
        payload: statement('api')
      })
      expect(pushed.api).toBe(true)
      // the registry indexes it itself: no tag-schema index written
      expect((await writes(mark)).filter(l => l.includes(referrersTag(img.digest)))).toEqual([])
      expect(await listReferrers(c, repo, img.digest, { artifactType: IN_TOTO })).toEqual({
        api: true,
        referrers: [listed.manifests[0]]
      })
      expect(await hasAttestation(c, repo, img.digest)).toBe(true)
    } finally {
      await front.stop()
    }
  })
})

describe('merge with token auth', () => {
  let treg: TestRegistry
  beforeAll(async () => {
    treg = await startRegistry({ auth: 'token' })
  })
  afterAll(async () => {
    await treg?.stop()
  })

  it('merges children from two repositories with one token for all of them', async () => {
    const c = fresh(treg)
    const base = `team/${uniqueName('tok')}`
    const amd = await pushImage(c, `${base}-amd64`, '', { arch: 'amd64' })
    const arm = await pushImage(c, `${base}-arm64`, '', { arch: 'arm64' })
    const tokensBefore = treg.tokenRequests().length
    const mark = await settled(treg)
    const r = await merge({
      client: fresh(treg),
      registry: treg.host,
      children: [
        { repository: `${base}-amd64`, digest: amd.digest },
        { repository: `${base}-arm64`, digest: arm.digest }
      ],
      targetRepository: base,
      tags: ['prod']
    })
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64'])
    expect(r.blobBytesUploaded).toBe(0)
    expect(blobWrites(await writes(mark, treg)).every(l => /mount=.* 201$/.test(l))).toBe(true)
    expect((await c.getManifest(base, 'prod')).digest).toBe(r.digest)
    const asked = treg.tokenRequests().slice(tokensBefore)
    expect(asked.every(t => t.status === 200)).toBe(true)
    expect(asked[0].scopes).toEqual(
      expect.arrayContaining([
        `repository:${base}-amd64:pull`,
        `repository:${base}-arm64:pull`,
        `repository:${base}:pull,push`
      ])
    )
  })
})

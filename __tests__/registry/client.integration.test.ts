/**
 * The registry client against real docker-registry instances (htpasswd and token auth) and real dockerd
 * pushes. The reference grammar and challenge parsing, as plain units: reference.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { RegistryError } from '../../src/lib/registry/errors.js'
import { DOCKER_MANIFEST, OCI_MANIFEST, sha256 } from '../../src/lib/registry/media.js'
import { startFaultProxy, type FaultProxy } from '../../src/testkit/fault-proxy.js'
import { removeImages } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { dockerPushApp, dockerRepoDigest, pushImage } from './helpers.js'

describe('against docker-registry with htpasswd', () => {
  let reg: TestRegistry
  let client: RegistryClient
  const images: string[] = []
  let pushedDigest = ''
  let repo = ''

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' })
    client = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
    repo = `team/${uniqueName('app')}`
    images.push(dockerPushApp(reg, repo, 'v1'))
    pushedDigest = dockerRepoDigest(images[0])
  })
  afterAll(async () => {
    removeImages(...images)
    await reg?.stop()
  })

  it('resolves what docker pushed to the same digest, over the exact bytes', async () => {
    const m = await client.resolve(repo, 'v1')
    expect(m.digest).toBe(pushedDigest)
    expect(sha256(m.bytes)).toBe(pushedDigest)
    expect(m.mediaType).toBe(DOCKER_MANIFEST)
    expect(await client.headManifest(repo, 'v1')).toEqual({
      digest: pushedDigest,
      mediaType: DOCKER_MANIFEST,
      size: m.size
    })
    expect((await client.resolve(repo, pushedDigest)).digest).toBe(pushedDigest)
  })

  it('answers null for a missing tag on HEAD and names it on GET', async () => {
    expect(await client.headManifest(repo, 'nope')).toBeNull()
    await expect(client.resolve(repo, 'nope')).rejects.toThrow(
      `${reg.host}/${repo}:nope was not found (404): check that the tag exists`
    )
    await expect(client.resolve('team/no-such-repo', 'v1')).rejects.toThrow(/team\/no-such-repo/)
  })

  it('lists tags and checks blobs', async () => {
    expect(await client.listTags(repo)).toEqual(['v1'])
    const m = await client.resolve(repo, 'v1')
    const config = (JSON.parse(m.bytes.toString()) as { config: { digest: string } }).config.digest
    expect(await client.blobExists(repo, config)).toBe(true)
    expect(await client.blobExists(repo, sha256(randomBytes(8)))).toBe(false)
  })

  it('puts manifests byte for byte', async () => {
    const img = await pushImage(client, `${repo}-raw`, 'x')
    const back = await client.getManifest(`${repo}-raw`, 'x')
    expect(back.bytes.equals(img.bytes)).toBe(true)
    expect(back.digest).toBe(img.digest)
    expect(back.mediaType).toBe(OCI_MANIFEST)
  })

  it('says to check the credentials on a wrong password', async () => {
    const bad = new RegistryClient({ registry: reg.host, username: reg.username, password: 'wrong' })
    const err = await bad.resolve(repo, 'v1').catch(e => e as RegistryError)
    expect(err).toBeInstanceOf(RegistryError)
    expect((err as RegistryError).message).toBe(
      `${reg.host} refused the credentials (401) for ${reg.host}/${repo}: check registry-username and registry-password.`
    )
  })

  it('copies a blob by streaming when the registry will not mount it', async () => {
    const proxy: FaultProxy = await startFaultProxy(reg.url, [
      { method: 'POST', path: /mount=/, times: Infinity, fault: { rewrite: p => p.replace(/\?.*$/, '') } }
    ])
    try {
      const c = new RegistryClient({ registry: proxy.host, username: reg.username, password: reg.password })
      const data = randomBytes(300_000)
      const digest = sha256(data)
      await c.uploadBlob(`${repo}-src`, digest, data)
      const before = c.stats.bytesOut
      expect(await c.copyBlob(`${repo}-src`, `${repo}-dst`, digest, data.length)).toBe('uploaded')
      expect(c.stats.bytesOut - before).toBe(data.length)
      expect(await c.blobExists(`${repo}-dst`, digest)).toBe(true)
      expect(proxy.requests.some(r => r.method === 'PATCH' && r.path.includes(`${repo}-dst`))).toBe(true)
      expect(await c.mountBlob(`${repo}-src`, `${repo}-other`, digest)).toBe(false)
    } finally {
      await proxy.stop()
    }
  })
})

describe('against docker-registry with token auth', () => {
  let reg: TestRegistry
  beforeAll(async () => {
    reg = await startRegistry({
      auth: 'token',
      users: { ci: 'ci-secret', reader: 'reader-secret' },
      grants: { reader: { '*': ['pull'] } }
    })
  })
  afterAll(async () => {
    await reg?.stop()
  })

  it('gets one token for source pull and target push at once, and caches it', async () => {
    const c = new RegistryClient({ registry: reg.host, username: 'ci', password: 'ci-secret' })
    c.authorize('team/src', ['pull'])
    c.authorize('team/dst', ['pull', 'push'])
    await pushImage(c, 'team/dst', 'v1')
    await c.headManifest('team/src', 'v1')
    const asked = reg.tokenRequests().filter(t => t.user === 'ci')
    expect(asked).toHaveLength(1)
    expect(asked[0].scopes).toEqual(['repository:team/dst:pull,push', 'repository:team/src:pull'])
  })

  it('reports a token without push rights as a 403 with the fix', async () => {
    const c = new RegistryClient({ registry: reg.host, username: 'reader', password: 'reader-secret' })
    await expect(pushImage(c, 'team/ro', 'v1')).rejects.toThrow(
      `${reg.host} denied push on ${reg.host}/team/ro (403): use credentials with push rights on that repository.`
    )
  })

  it('reports a wrong password at the token service', async () => {
    const c = new RegistryClient({ registry: reg.host, username: 'ci', password: 'nope' })
    await expect(c.headManifest('team/dst', 'v1')).rejects.toThrow(
      /refused the credentials \(401\).*check registry-username and registry-password/
    )
  })

  it('works anonymously where the issuer grants nothing: a clear 401', async () => {
    const c = new RegistryClient({ registry: reg.host })
    await expect(c.headManifest('team/dst', 'v1')).rejects.toThrow(
      /needs credentials for .*: set registry-username and registry-password/
    )
  })
})

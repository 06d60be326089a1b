/**
 * Faults from a proxy in front of a real docker-registry: 429 with Retry-After, 503, dropped connections
 * (before an answer and halfway through a body). Each run ends in success within the retry budget or in a
 * clear failure, and a target tag never points at a wrong digest.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { RegistryError } from '../../src/lib/registry/errors.js'
import { sha256 } from '../../src/lib/registry/media.js'
import { promote } from '../../src/lib/registry/promote.js'
import { startFaultProxy, type FaultProxy } from '../../src/testkit/fault-proxy.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { pushImage, type PushedImage } from './helpers.js'

let reg: TestRegistry
let proxy: FaultProxy
let direct: RegistryClient
let src = ''
let image: PushedImage
const fast = { attempts: 5, baseDelayMs: 20, maxDelayMs: 200, maxRetryAfterMs: 2000, budgetMs: 20_000 }
const viaProxy = (): RegistryClient =>
  new RegistryClient({ registry: proxy.host, username: reg.username, password: reg.password, retry: fast })

beforeAll(async () => {
  reg = await startRegistry({ auth: 'htpasswd' })
  proxy = await startFaultProxy(reg.url)
  direct = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
  src = `team/${uniqueName('faults')}`
  image = await pushImage(direct, src, 'v1', { layers: 2, layerBytes: 200_000 })
})
afterAll(async () => {
  await proxy?.stop()
  await reg?.stop()
})

describe('retries', () => {
  it('waits out a 429 with Retry-After and then puts the tag', async () => {
    proxy.setRules([{ method: 'PUT', path: /\/manifests\/r429$/, fault: { status: 429, retryAfter: 1 } }])
    const c = viaProxy()
    const r = await promote({
      client: c,
      registry: proxy.host,
      sourceRepository: src,
      from: 'v1',
      targetRepository: src,
      toTags: ['r429']
    })
    expect(r.digest).toBe(image.digest)
    const puts = proxy.requests.filter(q => q.method === 'PUT' && q.path.endsWith('/manifests/r429'))
    expect(puts.map(p => p.outcome)).toEqual([429, 201])
    expect(c.stats.retries).toBeGreaterThanOrEqual(1)
  })

  it('rides out 503s and dropped connections on reads and mounts', async () => {
    proxy.setRules([
      { method: 'GET', path: /\/manifests\/v1$/, times: 2, fault: { status: 503 } },
      { method: 'HEAD', path: /\/manifests\//, times: 1, fault: { drop: 'before-response' } },
      { method: 'POST', path: /mount=/, times: 2, fault: { drop: 'before-response' } },
      { method: 'GET', path: /\/v2\/$/, times: 1, fault: { status: 502 } }
    ])
    const dst = `${src}-copy`
    const r = await promote({
      client: viaProxy(),
      registry: proxy.host,
      sourceRepository: src,
      from: 'v1',
      targetRepository: dst,
      toTags: ['prod']
    })
    expect(r.blobsMounted).toBe(3)
    expect(r.blobsUploaded).toBe(0)
    expect((await direct.headManifest(dst, 'prod'))?.digest).toBe(image.digest)
    expect(proxy.requests.filter(q => q.faulted).length).toBeGreaterThanOrEqual(6)
  })

  it('reads a manifest again when its body is cut off halfway', async () => {
    proxy.setRules([{ method: 'GET', path: /\/manifests\/v1$/, times: 2, fault: { drop: 'mid-body' } }])
    const c = viaProxy()
    const m = await c.resolve(src, 'v1')
    expect(m.digest).toBe(image.digest)
    expect(m.bytes.equals(image.bytes)).toBe(true)
    expect(c.stats.retries).toBe(2)
    expect(proxy.requests.filter(q => q.faulted && q.outcome === 'dropped').length).toBeGreaterThanOrEqual(2)
  })

  it('restarts a streamed blob copy cut off halfway', async () => {
    proxy.setRules([
      { method: 'POST', path: /mount=/, times: Infinity, fault: { rewrite: p => p.replace(/\?.*$/, '') } },
      { method: 'GET', path: /\/blobs\/sha256:/, times: 1, fault: { drop: 'mid-body' } }
    ])
    const c = viaProxy()
    const data = randomBytes(500_000)
    const digest = sha256(data)
    await direct.uploadBlob(src, digest, data)
    expect(await c.copyBlob(src, `${src}-stream`, digest, data.length)).toBe('uploaded')
    expect(c.stats.retries).toBeGreaterThanOrEqual(1)
    expect(await direct.blobExists(`${src}-stream`, digest)).toBe(true)
    expect(proxy.requests.some(q => q.faulted && q.outcome === 'dropped')).toBe(true)
  })

  it('starts a blob upload again in a new session when its PUT is cut off or answered 500', async () => {
    proxy.setRules([
      { method: 'PUT', path: /\/blobs\/uploads\//, times: 1, fault: { drop: 'before-response' } },
      { method: 'PUT', path: /\/blobs\/uploads\//, times: 1, fault: { status: 500 } }
    ])
    const c = viaProxy()
    const data = randomBytes(100_000)
    const digest = sha256(data)
    await c.uploadBlob(`${src}-up`, digest, data)
    expect(await direct.blobExists(`${src}-up`, digest)).toBe(true)
    expect(
      proxy.requests.filter(q => q.method === 'POST' && q.path.includes(`${src}-up/blobs/uploads/`)).length
    ).toBe(3)
    expect(c.stats.retries).toBe(2)
  })
})

describe('failures', () => {
  it('ends with a clear error when the registry keeps failing, and leaves the tag where it was', async () => {
    const dst = `${src}-down`
    const old = await pushImage(direct, dst, 'prod')
    proxy.setRules([{ method: 'PUT', path: /\/manifests\/prod$/, times: Infinity, fault: { status: 503 } }])
    const c = viaProxy()
    const err = await promote({
      client: c,
      registry: proxy.host,
      sourceRepository: src,
      from: 'v1',
      targetRepository: dst,
      toTags: ['prod']
    }).catch(e => e as RegistryError)
    expect(err).toBeInstanceOf(RegistryError)
    expect((err as RegistryError).message).toMatch(
      /answered 503 to PUT .*\/manifests\/prod after 5 attempts .*run the job again later\.$/
    )
    expect((await direct.headManifest(dst, 'prod'))?.digest).toBe(old.digest)
  })

  it('gives up on a Retry-After longer than the budget at once', async () => {
    proxy.setRules([
      {
        method: 'PUT',
        path: /\/manifests\/later$/,
        times: Infinity,
        fault: { status: 429, retryAfter: 3600 }
      }
    ])
    const c = new RegistryClient({
      registry: proxy.host,
      username: reg.username,
      password: reg.password,
      retry: { ...fast, maxRetryAfterMs: 3_600_000 }
    })
    await expect(
      promote({
        client: c,
        registry: proxy.host,
        sourceRepository: src,
        from: 'v1',
        targetRepository: src,
        toTags: ['later']
      })
    ).rejects.toThrow(/kept rate-limiting \(429\) PUT .* after 1 attempts .*wait and run the job again/)
    expect(await direct.headManifest(src, 'later')).toBeNull()
  })

  it('never leaves a target on a wrong digest under random faults', async () => {
    const dst = `${src}-chaos`
    proxy.setRules([
      { path: /./, after: 2, times: 3, fault: { status: 503 } },
      { path: /\/manifests\//, after: 1, times: 2, fault: { drop: 'before-response' } },
      { method: 'POST', times: 1, fault: { status: 429, retryAfter: 0 } }
    ])
    const r = await promote({
      client: viaProxy(),
      registry: proxy.host,
      sourceRepository: src,
      from: 'v1',
      targetRepository: dst,
      toTags: ['a', 'b']
    })
    for (const t of ['a', 'b']) expect((await direct.headManifest(dst, t))?.digest).toBe(image.digest)
    expect(r.targets.map(t => t.after)).toEqual([image.digest, image.digest])
  })
})

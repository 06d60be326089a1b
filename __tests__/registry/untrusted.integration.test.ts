/**
 * What a registry (or anyone it points at) says is not trusted further than it has to be, against real
 * docker-registry instances with a front (src/testkit/registry-front.ts) playing the hostile parts:
 * credentials never go to another origin named by a Location or Link; digests from manifests and headers
 * are checked before they become request paths; manifest and token bodies are capped; blob copies have an
 * overall deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { randomBytes } from 'node:crypto'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { RegistryError } from '../../src/lib/registry/errors.js'
import { OCI_INDEX, OCI_MANIFEST, sha256 } from '../../src/lib/registry/media.js'
import { promote } from '../../src/lib/registry/promote.js'
import { serve, type Fixture } from '../../src/testkit/http-fixtures.js'
import { uniqueName } from '../../src/testkit/net.js'
import {
  answer,
  drip,
  silent,
  startRegistryFront,
  type RegistryFront
} from '../../src/testkit/registry-front.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { pushImage, pushIndex, type PushedImage } from './helpers.js'

const fast = { attempts: 2, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterMs: 200, budgetMs: 10_000 }
const MiB = 1024 * 1024

/** The rejection of `p` (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<RegistryError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err
  )
  expect(e).toBeInstanceOf(RegistryError)
  return e as RegistryError
}

/** A third party on another loopback port: takes uploads and serves a page of tags, recording every request. */
async function thirdParty(): Promise<Fixture> {
  return serve((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0]
    if (req.method === 'PATCH') {
      // relative: it is resolved against this server, not against the registry
      res.writeHead(202, { location: '/upload/finish?session=2', 'content-length': '0' })
      res.end()
    } else if (req.method === 'PUT') {
      res.writeHead(201, { 'content-length': '0' })
      res.end()
    } else if (req.method === 'GET' && path.endsWith('/tags/list')) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ name: 'x', tags: ['from-elsewhere'] }))
    } else {
      res.writeHead(404)
      res.end()
    }
  })
}

describe.each(['htpasswd', 'token'] as const)('credentials stay with the registry (%s auth)', auth => {
  let reg: TestRegistry
  let third: Fixture
  let front: RegistryFront
  let direct: RegistryClient
  let repo = ''
  let client: () => RegistryClient

  beforeAll(async () => {
    reg = await startRegistry({ auth })
    third = await thirdParty()
    front = await startRegistryFront(reg.url)
    direct = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
    repo = `team/${uniqueName('creds')}`
    await pushImage(direct, repo, 'v1', { layers: 1 })
    client = () =>
      new RegistryClient({
        registry: front.host,
        username: reg.username,
        password: reg.password,
        retry: fast
      })
  })
  afterAll(async () => {
    await front?.stop()
    await third?.stop()
    await reg?.stop()
  })

  it('uploads to a Location on another origin without the Authorization header', async () => {
    front.setRules([
      {
        method: 'POST',
        path: /\/blobs\/uploads\//,
        headers: h => ({ ...h, location: `${third.url}/upload/session-1?state=abc` })
      }
    ])
    const c = client()
    const data = randomBytes(2048)
    await c.uploadBlob(`${repo}-up`, sha256(data), data)
    const seen = third.requests.filter(r => r.path.startsWith('/upload/session-1'))
    expect(seen.map(r => r.method)).toEqual(['PUT'])
    expect(third.requests.every(r => r.headers.authorization === undefined)).toBe(true)
    // credentials were in play: the registry itself got them
    expect(front.requests.some(r => r.method === 'POST' && r.authorization)).toBe(true)
  })

  it('streams a copy into a Location on another origin without the Authorization header', async () => {
    front.setRules([
      {
        method: 'POST',
        path: /mount=/,
        rewrite: p => p.replace(/\?.*$/, ''),
        headers: h => ({ ...h, location: `${third.url}/upload/session-3` })
      }
    ])
    const c = client()
    const data = randomBytes(50_000)
    const digest = sha256(data)
    await direct.uploadBlob(repo, digest, data)
    expect(await c.copyBlob(repo, `${repo}-copy`, digest, data.length)).toBe('uploaded')
    const patch = third.requests.find(r => r.method === 'PATCH' && r.path === '/upload/session-3')
    expect(patch?.headers['content-length']).toBe(String(data.length))
    expect(patch?.body.length).toBeGreaterThan(0)
    // the relative Location of the PATCH answer is the third party's, and is followed there
    expect(third.requests.some(r => r.method === 'PUT' && r.path.startsWith('/upload/finish'))).toBe(true)
    expect(third.requests.every(r => r.headers.authorization === undefined)).toBe(true)
    // the blob GET from the source went to the registry with credentials
    expect(
      front.requests.some(r => r.method === 'GET' && r.path.includes('/blobs/') && r.authorization)
    ).toBe(true)
  })

  it('follows a tag list Link to another origin without the Authorization header', async () => {
    front.setRules([
      {
        method: 'GET',
        path: /\/tags\/list/,
        headers: h => ({ ...h, link: `<${third.url}/v2/${repo}/tags/list?n=1000&last=v1>; rel="next"` })
      }
    ])
    const before = third.requests.length
    expect(await client().listTags(repo)).toEqual(['v1', 'from-elsewhere'])
    const seen = third.requests.slice(before)
    expect(seen.map(r => r.method)).toEqual(['GET'])
    expect(seen.every(r => r.headers.authorization === undefined)).toBe(true)
  })

  it('does not let a 401 from another origin change the scopes it asks the token service for', async () => {
    const other = await serve((_req, res) => {
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${reg.tokenUrl ?? reg.url}",service="x",scope="repository:victim/repo:pull,push"`
      })
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}')
    })
    try {
      front.setRules([
        {
          method: 'GET',
          path: /\/tags\/list/,
          headers: h => ({ ...h, link: `<${other.url}/v2/${repo}/tags/list?last=v1>; rel="next"` })
        }
      ])
      const before = reg.tokenRequests().length
      await expect(client().listTags(repo)).rejects.toThrow(/401/)
      expect(other.requests).toHaveLength(1)
      expect(other.requests[0].headers.authorization).toBeUndefined()
      const asked = reg.tokenRequests().slice(before)
      expect(asked.some(t => t.scopes.some(sc => sc.includes('victim/repo')))).toBe(false)
    } finally {
      await other.stop()
    }
  })
})

describe('a hostile or broken registry', () => {
  let reg: TestRegistry
  let front: RegistryFront
  let direct: RegistryClient
  let src = ''
  let image: PushedImage
  const viaFront = (extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient =>
    new RegistryClient({
      registry: front.host,
      username: reg.username,
      password: reg.password,
      retry: fast,
      ...extra
    })

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' })
    front = await startRegistryFront(reg.url)
    direct = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
    src = `team/${uniqueName('hostile')}`
    image = await pushImage(direct, src, 'v1', { layers: 1, layerBytes: 100_000 })
    // the tag a "digest" of ../manifests/v1.2.3 resolves to
    await pushImage(direct, src, 'v1.2.3', { layers: 1 })
  })
  afterAll(async () => {
    await front?.stop()
    await reg?.stop()
  })

  describe('digests', () => {
    it('refuses an index whose child digest is a path, and puts no tag', async () => {
      const dst = `${src}-dst`
      await pushImage(direct, dst, 'v1.2.3', { layers: 1 })
      const tagBefore = (await direct.headManifest(dst, 'v1.2.3'))?.digest
      const evil = JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: '../manifests/v1.2.3', size: image.bytes.length }]
      })
      front.setRules([
        {
          method: 'GET',
          path: new RegExp(`^/v2/${src}/manifests/evil$`),
          respond: answer(200, evil, { 'content-type': OCI_INDEX })
        }
      ])
      const seen = front.requests.length
      const err = await failure(
        promote({
          client: viaFront(),
          registry: front.host,
          sourceRepository: src,
          from: 'evil',
          targetRepository: dst,
          toTags: ['prod']
        })
      )
      expect(err.message).toContain(`${front.host}/${src}:evil`)
      expect(err.message).toContain('"../manifests/v1.2.3", which is not a digest')
      const after = front.requests.slice(seen)
      expect(after.filter(r => r.method === 'PUT')).toEqual([])
      expect(after.some(r => r.path.includes('v1.2.3'))).toBe(false)
      expect((await direct.headManifest(dst, 'v1.2.3'))?.digest).toBe(tagBefore)
      expect(await direct.headManifest(dst, 'prod')).toBeNull()
    })

    it('refuses a manifest whose layer digest is not a digest', async () => {
      const bad = JSON.parse(image.bytes.toString()) as { layers: { digest: string }[] }
      bad.layers[0].digest = `sha256:${'a'.repeat(60)}/../../x`
      front.setRules([
        {
          method: 'GET',
          path: /\/manifests\/badlayer$/,
          respond: answer(200, JSON.stringify(bad), { 'content-type': OCI_MANIFEST })
        }
      ])
      const err = await failure(viaFront().getManifest(src, 'badlayer'))
      expect(err.message).toMatch(
        new RegExp(
          `^${front.host}/${src}:badlayer: the manifest's layers\\[0\\] has the digest ".*/\\.\\./\\.\\./x"`
        )
      )
    })

    it('refuses a Docker-Content-Digest that is not a digest, on HEAD and on GET', async () => {
      front.setRules([
        {
          path: /\/manifests\/v1$/,
          headers: h => ({ ...h, 'docker-content-digest': 'sha256:../../blobs/x' })
        }
      ])
      const c = viaFront()
      // one after the other: a second call started at once could reject before it is awaited
      for (const call of [() => c.headManifest(src, 'v1'), () => c.getManifest(src, 'v1')]) {
        const err = await failure(call())
        expect(err.message).toContain(`${front.host}/${src}`)
        expect(err.message).toContain(
          'the Docker-Content-Digest "sha256:../../blobs/x", which is not a digest'
        )
      }
    })

    it('refuses references and digests that are not ones before any request', async () => {
      front.setRules([])
      const c = viaFront()
      const seen = front.requests.length
      await expect(c.putManifest(src, '../manifests/x', image.bytes, OCI_MANIFEST)).rejects.toThrow(
        `${front.host}/${src}: "../manifests/x" is neither a tag nor a digest`
      )
      await expect(c.blobExists(src, 'sha256:../../manifests/v1')).rejects.toThrow(
        `${front.host}/${src}: the blob digest "sha256:../../manifests/v1" is not a digest`
      )
      await expect(c.copyBlob(src, `${src}-x`, 'sha256:ABC')).rejects.toThrow(/is not a digest/)
      await expect(c.headManifest('team/../admin', 'v1')).rejects.toThrow(
        `${front.host}: "team/../admin" is not a repository name`
      )
      expect(front.requests.length).toBe(seen)
    })
  })

  describe('limits', () => {
    it('refuses a manifest over 4 MiB, by Content-Length and when sent chunked', async () => {
      const big = Buffer.concat([
        Buffer.from('{"schemaVersion":2,"x":"'),
        Buffer.alloc(5 * MiB, 'a'),
        Buffer.from('"}')
      ])
      front.setRules([
        {
          method: 'GET',
          path: /\/manifests\/big$/,
          respond: answer(200, big, { 'content-type': OCI_MANIFEST })
        },
        {
          method: 'GET',
          path: /\/manifests\/bigchunked$/,
          respond: answer(200, big, { 'content-type': OCI_MANIFEST }, { chunked: true })
        }
      ])
      const c = viaFront()
      for (const tag of ['big', 'bigchunked']) {
        const err = await failure(c.getManifest(src, tag))
        expect(err.message).toBe(
          `the manifest ${front.host}/${src}:${tag} is larger than 4 MiB, the distribution spec's limit for manifests; refusing to read it (GET /v2/${src}/manifests/${tag}).`
        )
      }
      // each was asked for once: a refusal is not retried
      expect(front.requests.filter(r => /\/manifests\/big(chunked)?$/.test(r.path))).toHaveLength(2)
    })

    it('refuses a token answer over 1 MiB', async () => {
      const tokens = await startRegistryFront(undefined, [
        {
          path: /^\/token/,
          respond: answer(
            200,
            `{"token":"${'a'.repeat(2 * MiB)}"}`,
            { 'content-type': 'application/json' },
            {
              chunked: true
            }
          )
        }
      ])
      const stand = await startRegistryFront(undefined, [
        {
          path: /^\/v2\/$/,
          respond: answer(
            401,
            { errors: [{ code: 'UNAUTHORIZED' }] },
            {
              'www-authenticate': `Bearer realm="${tokens.url}/token",service="stand-in"`
            }
          )
        }
      ])
      try {
        const c = new RegistryClient({ registry: stand.host, username: 'u', password: 'p', retry: fast })
        const err = await failure(c.headManifest('team/app', 'v1'))
        expect(err.message).toBe(
          `the token answer of ${tokens.url} (the token service of ${stand.host}) is larger than 1 MiB, the limit for token answers; refusing to read it (GET /token (token service ${tokens.host})).`
        )
        expect(tokens.requests).toHaveLength(1)
        expect(stand.requests.filter(r => r.path !== '/v2/')).toEqual([])
      } finally {
        await stand.stop()
        await tokens.stop()
      }
    })

    it('refuses a token that cannot go in a header', async () => {
      const tokens = await startRegistryFront(undefined, [
        { path: /^\/token/, respond: answer(200, { token: 'abc\u00e9 def', expires_in: 300 }) }
      ])
      const stand = await startRegistryFront(undefined, [
        {
          path: /^\/v2\/$/,
          respond: answer(401, {}, { 'www-authenticate': `Bearer realm="${tokens.url}/token"` })
        }
      ])
      try {
        const c = new RegistryClient({ registry: stand.host, retry: fast })
        const err = await failure(c.getManifest('team/app', 'v1'))
        expect(err.message).toMatch(/answered with a token that cannot go in an Authorization header/)
      } finally {
        await stand.stop()
        await tokens.stop()
      }
    })

    it.each([
      ['a source that drip-feeds the blob', { method: 'GET', path: /\/blobs\/sha256:/, respond: drip(100) }],
      [
        'a destination that never answers the upload',
        { method: 'PATCH', path: /\/blobs\/uploads\//, respond: silent() }
      ]
    ])('ends a blob copy at its deadline: %s', async (_name, rule) => {
      const data = randomBytes(300_000)
      const digest = sha256(data)
      await direct.uploadBlob(src, digest, data)
      const dst = `${src}-${uniqueName('slow')}`
      front.setRules([{ method: 'POST', path: /mount=/, rewrite: p => p.replace(/\?.*$/, '') }, rule])
      const c = viaFront({ blobTimeoutMs: 1500 })
      const err = await failure(c.copyBlob(src, dst, digest, data.length))
      expect(err.message).toBe(
        `copying blob ${digest} from ${front.host}/${src} to ${front.host}/${dst} did not finish within 1.5 s (the blob time limit): the registry is stalled or too slow; run the job again, or allow more time.`
      )
      // the stalled part was reached, and the upload session opened for the copy was cancelled
      expect(
        front.requests.some(
          r => r.method === rule.method && rule.path.test(r.path) && r.answeredBy === 'front'
        )
      ).toBe(true)
      expect(
        front.requests.some(r => r.method === 'DELETE' && r.path.includes(`${dst}/blobs/uploads/`))
      ).toBe(true)
      expect(await direct.blobExists(dst, digest)).toBe(false)
    })
  })

  it('cuts off a source that sends more than the blob size, and does not store it', async () => {
    const data = randomBytes(20_000)
    const digest = sha256(data)
    await direct.uploadBlob(src, digest, data)
    const dst = `${src}-${uniqueName('over')}`
    front.setRules([
      { method: 'POST', path: /mount=/, rewrite: p => p.replace(/\?.*$/, '') },
      {
        method: 'GET',
        path: new RegExp(`/blobs/${digest}$`),
        respond: answer(200, Buffer.concat([data, randomBytes(4 * MiB)]), {}, { chunked: true })
      }
    ])
    const err = await failure(viaFront().copyBlob(src, dst, digest, data.length))
    expect(err.message).toContain(`the source sent more than the ${data.length} bytes of blob ${digest}`)
    expect(await direct.blobExists(dst, digest)).toBe(false)
  })

  it('keeps platform names from an index out of log lines and outputs unless they are plain words', async () => {
    const idx = await pushIndex(direct, src, 'multi')
    const body = JSON.parse(idx.bytes.toString()) as { manifests: { platform: Record<string, string> }[] }
    body.manifests[0].platform.os = 'linux\n::error::injected'
    const bytes = JSON.stringify(body)
    front.setRules([
      {
        method: 'GET',
        path: /\/manifests\/oddplatform$/,
        respond: answer(200, bytes, { 'content-type': OCI_INDEX })
      }
    ])
    const lines: string[] = []
    const r = await promote({
      client: viaFront(),
      registry: front.host,
      sourceRepository: src,
      from: 'oddplatform',
      targetRepository: `${src}-plat`,
      toTags: ['prod'],
      log: l => lines.push(l)
    })
    expect(r.platforms).toEqual(['invalid/amd64', 'linux/arm64'])
    expect(lines.some(l => l.includes('(invalid/amd64)'))).toBe(true)
    expect(lines.every(l => !l.includes('\n') && !l.includes('::error::'))).toBe(true)
    expect((await direct.headManifest(`${src}-plat`, 'prod'))?.digest).toBe(sha256(Buffer.from(bytes)))
  })

  describe('URLs the registry hands out', () => {
    it('refuses an upload Location that is not http(s)', async () => {
      front.setRules([
        {
          method: 'POST',
          path: /\/blobs\/uploads\/$/,
          headers: h => ({ ...h, location: 'file:///etc/passwd' })
        }
      ])
      const data = randomBytes(1024)
      const err = await failure(viaFront().uploadBlob(`${src}-file`, sha256(data), data))
      expect(err.message).toMatch(
        new RegExp(
          `^${front.host} answered POST /v2/${src}-file/blobs/uploads/ with a Location "file:///etc/passwd" that shipline does not follow`
        )
      )
    })

    it('refuses a tag list whose Link leads back to a page already read', async () => {
      front.setRules([
        {
          method: 'GET',
          path: /\/tags\/list/,
          headers: (h, req) => ({ ...h, link: `<${req.url}>; rel="next"` })
        }
      ])
      const seen = front.requests.length
      const err = await failure(viaFront().listTags(src))
      expect(err.message).toMatch(/the tag list's Link header leads back to a page already read/)
      expect(front.requests.slice(seen).filter(r => r.path.includes('/tags/list'))).toHaveLength(1)
    })
  })
})

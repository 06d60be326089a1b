/**
 * The registry client's plain units, without a registry: the image reference grammar (docker.io defaults,
 * ports, tags, digests, refusals), WWW-Authenticate challenges, Retry-After and the error messages.
 * Against real docker-registry instances: client.integration.test.ts.
 */
import { describe, expect, it } from '@jest/globals'
import { parseChallenge, retryAfterMs } from '../../src/lib/registry/client.js'
import { httpError } from '../../src/lib/registry/errors.js'
import { checkTag, formatReference, isShaTag, parseImageReference } from '../../src/lib/registry/reference.js'

describe('parseImageReference', () => {
  it('applies the docker.io defaults', () => {
    expect(parseImageReference('nginx')).toEqual({ registry: 'docker.io', repository: 'library/nginx' })
    expect(parseImageReference('acme/app:1.2')).toEqual({
      registry: 'docker.io',
      repository: 'acme/app',
      tag: '1.2'
    })
    expect(parseImageReference('index.docker.io/acme/app').registry).toBe('docker.io')
  })
  it('reads registries with ports, tags and digests', () => {
    const d = 'sha256:' + 'a'.repeat(64)
    expect(parseImageReference('127.0.0.1:5000/team/app:v1')).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'team/app',
      tag: 'v1'
    })
    expect(parseImageReference(`ghcr.io/acme/shop/api@${d}`)).toEqual({
      registry: 'ghcr.io',
      repository: 'acme/shop/api',
      digest: d
    })
    expect(parseImageReference(`localhost/app:x@${d}`)).toEqual({
      registry: 'localhost',
      repository: 'app',
      tag: 'x',
      digest: d
    })
    expect(formatReference(parseImageReference('ghcr.io/a/b:c'))).toBe('ghcr.io/a/b:c')
  })
  it('refuses uppercase names with the lowercase spelling as the fix, or lowercases on request', () => {
    expect(() => parseImageReference('ghcr.io/Acme/App:v1')).toThrow("use 'ghcr.io/acme/app:v1'")
    expect(parseImageReference('ghcr.io/Acme/App:V1', { lowercase: true })).toEqual({
      registry: 'ghcr.io',
      repository: 'acme/app',
      tag: 'V1'
    })
  })
  it('refuses bad tags, digests and names', () => {
    expect(() => parseImageReference('acme/app:-bad')).toThrow(/not a valid tag/)
    expect(() => parseImageReference('acme/app@sha256:abc')).toThrow(/not a valid digest/)
    expect(() => parseImageReference('acme/a..b')).toThrow(/not a valid repository name/)
    expect(() => parseImageReference('https://ghcr.io/a/b')).toThrow(/without a scheme/)
    expect(() => checkTag('x'.repeat(129), 'to-tags')).toThrow(/1-128 characters/)
    expect(checkTag('v1.2_3-rc')).toBe('v1.2_3-rc')
    expect(isShaTag('0123456789abcdef0123456789abcdef01234567')).toBe(true)
    expect(isShaTag('0123456789ABCDEF0123456789abcdef01234567')).toBe(false)
  })
})

describe('challenges and errors', () => {
  it('parses Bearer and Basic challenges', () => {
    expect(
      parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull"')
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:a/b:pull' }
    })
    expect(parseChallenge('Basic realm="Registry Realm"')?.scheme).toBe('basic')
  })
  it('reads Retry-After in seconds and as a date', () => {
    expect(retryAfterMs('3')).toBe(3000)
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000)
    expect(retryAfterMs(null)).toBeUndefined()
  })
  it('maps ghcr.io refusals to the Manage Actions access fix', () => {
    const e = httpError({
      registry: 'ghcr.io',
      method: 'PUT',
      path: '/v2/acme/app/manifests/prod',
      status: 403,
      repository: 'acme/app'
    })
    expect(e.message).toMatch(/Write access in the package's Manage Actions access settings/)
    expect(httpError({ registry: 'ghcr.io', method: 'GET', path: '/token', status: 401 }).message).toMatch(
      /Manage Actions/
    )
  })
})

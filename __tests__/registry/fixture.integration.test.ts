/**
 * The registry fixtures themselves, on the real parts: docker-registry with htpasswd and with token auth
 * (through our token issuer), `docker login --password-stdin` into a temporary DOCKER_CONFIG and a real
 * `docker push` of a busybox image.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { buildAppImage, removeImages } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { dockerLogin, libtrustKeyId, startRegistry, type TestRegistry } from '../../src/testkit/registry.js'

const regs: TestRegistry[] = []
const images: string[] = []
let localTag = ''

beforeAll(() => {
  localTag = `shipline-fixture/${uniqueName('app')}:v1`
  images.push(localTag)
  buildAppImage({ tag: localTag, version: uniqueName('v') })
})

afterAll(async () => {
  removeImages(...images)
  for (const r of regs) await r.stop()
})

describe.each(['htpasswd', 'token'] as const)('docker-registry with %s auth', auth => {
  let reg: TestRegistry
  beforeAll(async () => {
    reg = await startRegistry({ auth })
    regs.push(reg)
  })

  it('asks for credentials', async () => {
    const r = await fetch(`${reg.url}/v2/`)
    expect(r.status).toBe(401)
    expect(r.headers.get('www-authenticate')).toMatch(auth === 'token' ? /^Bearer realm=/ : /^Basic realm=/)
  })

  it('lets docker log in over stdin and push', () => {
    const login = dockerLogin(reg)
    try {
      const ref = `${reg.host}/team/${uniqueName('app')}:v1`
      images.push(ref)
      execFileSync('docker', ['tag', localTag, ref])
      execFileSync('docker', ['--config', login.config, 'push', ref], { stdio: 'pipe' })
      expect(
        reg.requests().some(q => q.method === 'PUT' && q.path.includes('/manifests/v1') && q.status === 201)
      ).toBe(true)
      if (auth === 'token')
        expect(
          reg
            .tokenRequests()
            .some(t => t.user === reg.username && t.scopes.some(s => /:(push,pull|pull,push)$/.test(s)))
        ).toBe(true)
    } finally {
      login.remove()
    }
  })

  it('refuses a wrong password', () => {
    expect(() => dockerLogin({ ...reg, password: 'wrong' })).toThrow()
  })
})

describe('libtrust key id', () => {
  it('has 12 groups of 4 base32 characters', () => {
    const pem = execFileSync(
      'openssl',
      ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }
    )
    expect(libtrustKeyId(pem)).toMatch(/^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/)
  })
})

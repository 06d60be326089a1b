/**
 * deploy-ssh's and ship's `require-attestation` in-process (typed @actions/core fixture) against a real
 * docker-registry: a digest without an attestation referrer is refused before any host is contacted (a
 * tripwire listener is the "host" and counts connections); once build-push's kind of provenance is its
 * referrer, the check passes and the step goes on to connect. A registry that got no credentials and wants
 * a login is named, with the fix; token auth (ghcr.io style) too.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as core from '../../__fixtures__/core.js'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { IN_TOTO, pushReferrer } from '../../src/lib/registry/referrers.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { pushImage } from '../registry/helpers.js'
import { tripwire, type Tripwire } from './no-host.js'

jest.unstable_mockModule('@actions/core', () => core)
const deploySsh = await import('../../src/deploy-ssh/main.js')
const ship = await import('../../src/ship/main.js')
const { runAction } = await import('../../src/action/run.js')

let host: Tripwire
let reg: TestRegistry
let other: TestRegistry
let client: RegistryClient
const dir = mkdtempSync(join(tmpdir(), 'shipline-attest-deploy-'))
const compose = join(dir, 'docker-compose.yml')
const repo = `team/${uniqueName('attested')}`

beforeAll(async () => {
  host = await tripwire()
  reg = await startRegistry({ auth: 'htpasswd' })
  other = await startRegistry({ auth: 'htpasswd' })
  client = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
  writeFileSync(compose, 'services:\n  web:\n    image: example.test/app:latest\n')
})
afterAll(async () => {
  await host?.close()
  await reg?.stop()
  await other?.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** deploy inputs that get past every local check: a pinned host key, a password, the registry login */
const inputs = (image: string, over: Record<string, string> = {}): Record<string, string> => ({
  hosts: `deploy@${host.host}:${host.port}`,
  'ssh-password': 'pw-0123456789',
  'host-fingerprint': 'SHA256:' + 'A'.repeat(43),
  path: '/opt/app',
  'compose-file': compose,
  version: 'v1',
  images: `web=${image}`,
  registry: reg.host,
  'registry-username': reg.username,
  'registry-password': reg.password,
  'require-attestation': 'true',
  ...over
})

/** Runs the action; returns its one failure line and how many times the "host" was connected to. */
async function runWith(
  action: { run(): Promise<void> },
  given: Record<string, string>
): Promise<{ failure: string; hits: number }> {
  core.resetCore()
  const before = host.hits()
  core.setInputs(given)
  await runAction(action.run)
  expect(core.setFailed).toHaveBeenCalledTimes(1)
  return { failure: String(core.setFailed.mock.calls[0][0]), hits: host.hits() - before }
}

const infos = (): string[] => core.info.mock.calls.map(c => String(c[0]))

describe('require-attestation', () => {
  it('refuses a digest without an attestation before any host is contacted, naming the input, image and fix', async () => {
    const img = await pushImage(client, repo, 'bare')
    const { failure, hits } = await runWith(deploySsh, inputs(`${reg.host}/${repo}:bare`))
    expect(hits).toBe(0)
    expect(failure).toBe(
      `Input 'require-attestation': service 'web' image ${reg.host}/${repo}@${img.digest} has no attestation (no in-toto or provenance referrer of that digest in ${reg.host}/${repo}). Build it with 'attest: true' on build-push (promote copies the referrers along), or set 'require-attestation: false'.`
    )
    expect(core.setOutput).not.toHaveBeenCalled()
  })

  it('ship shares the input: the same refusal, before anything deploys', async () => {
    await pushImage(client, repo, 'bare-ship')
    const { failure, hits } = await runWith(
      ship,
      inputs(`${reg.host}/${repo}:bare-ship`, { 'smoke-url': 'http://127.0.0.1:9/' })
    )
    expect(hits).toBe(0)
    expect(failure).toMatch(/^Input 'require-attestation': service 'web' image .* has no attestation/)
  })

  it('an attested digest passes the check and the step goes on to connect to the host', async () => {
    const img = await pushImage(client, repo, 'attested')
    await pushReferrer({
      client,
      repository: repo,
      subject: img.digest,
      artifactType: IN_TOTO,
      payload: Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', n: uniqueName('s') }))
    })
    const { failure, hits } = await runWith(deploySsh, inputs(`${reg.host}/${repo}:attested`))
    expect(infos()).toContain('require-attestation: web: attested')
    expect(hits).toBeGreaterThan(0)
    // the tripwire speaks no SSH: the step got as far as the handshake
    expect(failure).toMatch(/^SSH connection to 127\.0\.0\.1:\d+ failed/)
  })

  it('through token auth (as ghcr.io does it): the referrers are read with the pull token of the login', async () => {
    const tok = await startRegistry({ auth: 'token' })
    try {
      const c = new RegistryClient({ registry: tok.host, username: tok.username, password: tok.password })
      const img = await pushImage(c, repo, 'attested')
      await pushReferrer({
        client: c,
        repository: repo,
        subject: img.digest,
        artifactType: IN_TOTO,
        payload: Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}')
      })
      const bare = await pushImage(c, repo, 'bare')
      const login = {
        registry: tok.host,
        'registry-username': tok.username,
        'registry-password': tok.password
      }
      const refused = await runWith(deploySsh, inputs(`${tok.host}/${repo}:bare`, login))
      expect(refused.hits).toBe(0)
      expect(refused.failure).toContain(`image ${tok.host}/${repo}@${bare.digest} has no attestation`)
      const passed = await runWith(deploySsh, inputs(`${tok.host}/${repo}:attested`, login))
      expect(infos()).toContain('require-attestation: web: attested')
      expect(passed.hits).toBeGreaterThan(0)
      expect(tok.tokenRequests().some(t => t.scopes.some(sc => sc.includes(repo)))).toBe(true)
    } finally {
      await tok.stop()
    }
  })

  it('off (the default): the same unattested digest goes on to connect', async () => {
    await pushImage(client, repo, 'bare-off')
    const given = inputs(`${reg.host}/${repo}:bare-off`)
    delete given['require-attestation']
    const { failure, hits } = await runWith(deploySsh, given)
    expect(hits).toBeGreaterThan(0)
    expect(failure).not.toMatch(/attestation/)
    expect(infos().some(l => l.startsWith('require-attestation'))).toBe(false)
  })

  it('an image on a registry that got no credentials and wants a login: named, nothing contacted', async () => {
    const otherClient = new RegistryClient({
      registry: other.host,
      username: other.username,
      password: other.password
    })
    const img = await pushImage(otherClient, repo, 'elsewhere')
    const { failure, hits } = await runWith(deploySsh, inputs(`${other.host}/${repo}@${img.digest}`))
    expect(hits).toBe(0)
    expect(failure).toMatch(
      new RegExp(
        `^Input 'require-attestation': ${other.host}/${repo}@${img.digest}: ${other.host} needs its own login; shipline sends 'registry-password' only to ${reg.host}\\.`
      )
    )
    expect(failure).not.toContain(reg.password)
    // by tag, the digest lookup before it says the same for its own input (one rule for both)
    const byTag = await runWith(deploySsh, inputs(`${other.host}/${repo}:elsewhere`))
    expect(byTag.hits).toBe(0)
    expect(byTag.failure).toMatch(
      new RegExp(`^Input 'images': ${other.host}/${repo}:elsewhere: ${other.host} needs its own login`)
    )
  })
})

/**
 * build-push `attest: true` on real parts: the classic builder on the real dockerd pushes the busybox app
 * to a real docker-registry, then shipline's provenance goes up as an OCI referrer of the digest, found by
 * listReferrers through the tag schema (docker-registry has no Referrers API); the buildx path (stand-in
 * plugin) at argument level: buildx is asked for nothing extra, the per-platform digest of push-by-digest
 * is what gets attested.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { uniqueName } from '../../src/testkit/net.js'
import { buildPush, type BuildPushOptions, type Log } from '../../src/lib/build/run.js'
import { removeDockerConfig } from '../../src/lib/docker/config.js'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { hasAttestation, IN_TOTO, listReferrers, referrersTag } from '../../src/lib/registry/referrers.js'
import type { ProvenanceStatement } from '../../src/lib/build/provenance.js'
import * as core from '../../__fixtures__/core.js'
import { installFakeBuildx } from './fake-buildx.js'
import { appContext, buildxArgv, pushOptions, removeRepositories, skopeoDigest } from './helpers.js'

jest.unstable_mockModule('@actions/core', () => core)
const buildPushMain = await import('../../src/build-push/main.js')
const { runAction } = await import('../../src/action/run.js')

const SHA = '5555555555666666666677777777778888888888'
const RUN_ENV = {
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'acme/shop',
  GITHUB_RUN_ID: '4242',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_REF: 'refs/heads/main',
  GITHUB_WORKFLOW_REF: 'acme/shop/.github/workflows/release.yml@refs/heads/main',
  GITHUB_EVENT_NAME: 'push'
}

let reg: TestRegistry
let client: RegistryClient
const temp = mkdtempSync(join(tmpdir(), 'shipline-bp-attest-'))
const ctx = appContext(uniqueName('attest'))
const repos: string[] = []
const user = join(temp, 'user')
const argvLog = join(temp, 'argv.jsonl')

beforeAll(async () => {
  installFakeBuildx(user, { argvLog, driver: 'docker-container' })
  reg = await startRegistry({ auth: 'htpasswd' })
  client = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
})
afterAll(async () => {
  await removeRepositories(...repos)
  await reg?.stop()
  ctx.remove()
  rmSync(temp, { recursive: true, force: true })
})

const quiet = (lines: string[] = []): Log => ({
  info: m => lines.push(m),
  notice: m => lines.push(`notice: ${m}`),
  warning: m => lines.push(`warning: ${m}`),
  group: (_n, fn) => fn()
})

const options = (over: Partial<BuildPushOptions> = {}): BuildPushOptions =>
  pushOptions(
    { reg, prefix: 'bp-attest/app', sha: SHA, context: ctx.dir, temp, user, repos },
    { attest: true, env: RUN_ENV, ...over }
  )

/** The statement the registry holds for `digest`: its one in-toto referrer's one layer. */
async function statementOf(
  repo: string,
  digest: string
): Promise<{ referrer: string; statement: ProvenanceStatement; raw: string }> {
  const { api, referrers } = await listReferrers(client, repo, digest)
  expect(api).toBe(false)
  expect(referrers.map(r => r.artifactType)).toEqual([IN_TOTO])
  const m = JSON.parse((await client.getManifest(repo, referrers[0].digest)).bytes.toString()) as {
    subject: { digest: string }
    layers: { digest: string; mediaType: string }[]
  }
  expect(m.subject.digest).toBe(digest)
  expect(m.layers.map(l => l.mediaType)).toEqual([IN_TOTO])
  const raw = (await client.getBlob(repo, m.layers[0].digest)).toString('utf8')
  return { referrer: referrers[0].digest, statement: JSON.parse(raw) as ProvenanceStatement, raw }
}

const repoOf = (o: BuildPushOptions): string => o.image.path

describe('attest: true (real dockerd, real registry)', () => {
  it('classic builder: the provenance is a referrer of the pushed digest; build-arg values stay out', async () => {
    const value = `arg-value-${uniqueName('v')}`
    const o = options({ builder: 'classic', buildArgs: new Map([['VERSION', value]]), target: undefined })
    try {
      const lines: string[] = []
      const r = await buildPush(o, quiet(lines))
      expect(await skopeoDigest(reg, `${o.image.image}:${SHA}`)).toBe(r.digest)
      expect(r.attestationDigest).toMatch(/^sha256:[0-9a-f]{64}$/)
      const { referrer, statement, raw } = await statementOf(repoOf(o), r.digest)
      expect(referrer).toBe(r.attestationDigest)
      // the image itself is untouched: the SHA tag and the stage tag still name the same plain manifest
      expect(await skopeoDigest(reg, `${o.image.image}:stage`)).toBe(r.digest)
      expect(await skopeoDigest(reg, `${o.image.image}:${referrersTag(r.digest)}`)).toBeDefined()
      expect(await hasAttestation(client, repoOf(o), r.digest)).toBe(true)

      expect(statement._type).toBe('https://in-toto.io/Statement/v1')
      expect(statement.predicateType).toBe('https://slsa.dev/provenance/v1')
      expect(statement.subject).toEqual([{ name: o.image.image, digest: { sha256: r.digest.slice(7) } }])
      const { buildDefinition, runDetails } = statement.predicate
      expect(buildDefinition.buildType).toBe('urn:shipline:build-push:v1')
      expect(buildDefinition.externalParameters).toEqual({
        workflow: {
          ref: 'refs/heads/main',
          repository: 'https://github.com/acme/shop',
          path: '.github/workflows/release.yml'
        },
        sha: SHA,
        context: ctx.dir,
        buildArgs: ['VERSION']
      })
      expect(buildDefinition.resolvedDependencies).toEqual([
        { uri: 'git+https://github.com/acme/shop@refs/heads/main', digest: { gitCommit: SHA } }
      ])
      expect(runDetails.builder.id).toBe('https://github.com/acme/shop/actions/runs/4242')
      expect(runDetails.metadata.invocationId).toBe(
        'https://github.com/acme/shop/actions/runs/4242/attempts/2'
      )
      const { startedOn, finishedOn } = runDetails.metadata
      expect(Date.parse(startedOn)).toBeLessThanOrEqual(Date.parse(finishedOn))
      // names only: the value of the build argument is nowhere in the statement, nor in the log
      expect(raw).not.toContain(value)
      expect(lines.join('\n')).toContain(`provenance ${r.attestationDigest} is a referrer of ${r.digest}`)
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('push: false: nothing to attest, said in a notice; nothing is pushed', async () => {
    const o = options({ builder: 'classic', push: false, login: undefined })
    try {
      const lines: string[] = []
      const r = await buildPush(o, quiet(lines))
      expect(r).toMatchObject({ digest: '', attestationDigest: '' })
      expect(lines).toContainEqual(
        expect.stringMatching(/^notice: attest: nothing was pushed \(push: false\)/)
      )
      expect(await skopeoDigest(reg, `${o.image.image}:${SHA}`)).toBeUndefined()
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it('buildx push-by-digest: buildx gets no attestation flags; the per-platform digest is attested', async () => {
    const o = options({ pushByDigest: true, platforms: ['linux/amd64'], buildArgs: new Map([['MODE', 'x']]) })
    try {
      const r = await buildPush(o, quiet())
      expect(r.builder).toMatch(/^buildx /)
      const build = buildxArgv(argvLog)
        .filter(a => a[1] === 'build')
        .at(-1)!
      // shipline's provenance is its own: buildx is not asked for an in-index attestation or an SBOM
      expect(build).toContain('--provenance=false')
      expect(build.join(' ')).not.toMatch(/--sbom|--attest/)
      const { statement } = await statementOf(repoOf(o), r.digest)
      expect(statement.subject[0].digest.sha256).toBe(r.digest.slice(7))
      expect(statement.predicate.buildDefinition.externalParameters).toMatchObject({
        platforms: ['linux/amd64'],
        buildArgs: ['MODE'],
        pushByDigest: true
      })
      expect(statement.predicate.buildDefinition.internalParameters.builder).toMatch(/^buildx /)
    } finally {
      removeDockerConfig(o.config.dir)
    }
  })

  it("the action: input 'attest' on, output 'attestation-digest' = the referrer listed for output 'digest'", async () => {
    const name = `${reg.host}/${uniqueName('bp-attest/action')}`
    repos.push(name)
    const saved = { ...process.env }
    Object.assign(process.env, RUN_ENV, { GITHUB_SHA: SHA, RUNNER_TEMP: temp, DOCKER_CONFIG: user })
    try {
      core.resetCore()
      core.setInputs({
        context: ctx.dir,
        image: name,
        'stage-tag': 'stage',
        push: 'true',
        attest: 'true',
        'registry-username': reg.username,
        'registry-password': reg.password
      })
      await runAction(buildPushMain.run)
      expect(core.setFailed).not.toHaveBeenCalled()
      const out = Object.fromEntries(core.setOutput.mock.calls.map(([k, v]) => [k, String(v)]))
      expect(out.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
      const { referrer } = await statementOf(name.slice(reg.host.length + 1), out.digest)
      expect(out['attestation-digest']).toBe(referrer)
      expect(core.summaryText()).toContain(out['attestation-digest'])
    } finally {
      process.env = saved
    }
  })
})

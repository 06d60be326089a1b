/**
 * A fleet of five sandbox hosts (five real sshd on their own ports, see fleet-hosts.ts), the real Docker
 * engine and docker-compose, a real registry: deploy() with the canary first and max-parallel 2. A
 * second release breaks on one host: every host that had switched goes back, so all five end on the
 * first version and still answer on their own ports.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy } from '../../src/lib/deploy/index.js'
import type { DeployOptions } from '../../src/lib/deploy/types.js'
import { buildAppImage, removeImages } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { FLEET_COMPOSE, startFleet, type SandboxFleet } from './fleet-hosts.js'
import { headDigest, removeProjects } from '../strategy/helpers.js'

const N = 5
const run = uniqueName('r')

describe('fleet of five hosts', () => {
  let reg: TestRegistry
  let fleet: SandboxFleet
  const base = mkdtempSync(join(tmpdir(), 'shipline-fleet-'))
  const path = `${base}/app`
  const repo = () => `${reg.host}/${uniqueName('fleet').toLowerCase()}`
  let image = ''
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  let common: Omit<DeployOptions, 'images' | 'version'>

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' })
    image = repo()
    // versions unique to the run (an image sharing another suite's content would share its id, and that
    // suite's cleanup by id would remove ours)
    buildAppImage({ tag: `${image}:v1`, version: `v1_${run}` })
    buildAppImage({ tag: `${image}:v2`, version: `v2_${run}` })
    for (const t of ['v1', 'v2']) execFileSync('docker', ['push', '-q', `${image}:${t}`], { stdio: 'ignore' })
    fleet = await startFleet(N, path)
    const compose = join(base, 'docker-compose.yml')
    writeFileSync(compose, FLEET_COMPOSE)
    common = {
      hosts: fleet.labels,
      connect: l => fleet.connect(l),
      path,
      healthTimeout: 60,
      lockTimeout: 60,
      maxParallel: 2,
      log,
      stableSeconds: 1,
      composeFiles: [compose],
      envFile: 'APP_PORT=@PORT@\nAPP_INNER_PORT=@INNER@\n',
      autoRollback: true,
      keepReleases: 5,
      resolveDigest: headDigest(reg.url)
    }
  }, 180_000)

  afterAll(async () => {
    removeProjects(...(fleet?.hosts ?? []).map(h => h.project))
    await fleet?.stop()
    await reg?.stop()
    removeImages(`${image}:v1`, `${image}:v2`)
    rmSync(base, { recursive: true, force: true })
  })

  const versionOn = async (port: number) =>
    (await (await fetch(`http://127.0.0.1:${port}/version`)).text()).trim()

  it('deploys to all five, canary first; a host that fails sends every switched host back', async () => {
    const r1 = await deploy({ ...common, images: [`app=${image}:v1`], version: 'v1' })
    expect(r1.error).toBeUndefined()
    expect(r1.status).toBe('deployed')
    expect(r1.hosts.map(h => h.status)).toEqual(Array(N).fill('deployed'))
    for (const h of fleet.hosts) expect(await versionOn(h.port)).toBe(`v1_${run}`)
    const v1Release = r1.releaseId

    // host 3 gets a broken configuration for the next release
    fleet.breakHost(3)
    const r2 = await deploy({ ...common, images: [`app=${image}:v2`], version: 'v2' })
    fleet.breakHost(undefined)
    expect(r2.status).toBe('rolled-back')
    expect(r2.error).toMatch(new RegExp(`${fleet.hosts[3].sshd.port}.*did not turn healthy`))
    const byHost = r2.hosts.map(h => h.status)
    // the canary switched first and went back; the failing host put its own previous release back
    expect(byHost[0]).toBe('reverted')
    expect(byHost[3]).toBe('rolled-back')
    expect(byHost.every(s => ['reverted', 'rolled-back', 'skipped'].includes(s))).toBe(true)
    for (const h of fleet.hosts) {
      expect(await versionOn(h.port)).toBe(`v1_${run}`)
      expect(readlinkSync(`${h.path}/.shipline/current`)).toBe(`releases/${v1Release}`)
    }
    expect(fleet.connections).toBe(2 * N)

    // the next good release goes everywhere
    const r3 = await deploy({ ...common, images: [`app=${image}:v2`], version: 'v2' })
    expect(r3.status).toBe('deployed')
    for (const h of fleet.hosts) expect(await versionOn(h.port)).toBe(`v2_${run}`)
  }, 300_000)
})

/**
 * Several hosts through deploy(): three real sshd on their own loopback ports (the fleet fixture of
 * __tests__/fleet/fleet-hosts.ts gives each host its own project path, Compose project and published port
 * on this one machine). A broken canary stops the rollout before any other host is touched; a host failing
 * after others switched sends those back; either way every host ends on one version, one row per host.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy, summaryTable, type DeployOptions } from '../../src/lib/deploy/index.js'
import { buildAppImage, removeRepository } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { FLEET_COMPOSE, startFleet, type SandboxFleet } from '../fleet/fleet-hosts.js'
import { digestResolver, quietLog, removeProject } from './helpers.js'

let reg: TestRegistry
let fleet: SandboxFleet
let repo: string
const dir = mkdtempSync(join(tmpdir(), 'shipline-deploy-fleet-'))
const path = join(dir, 'srv', 'app')

beforeAll(async () => {
  ;[reg, fleet] = await Promise.all([startRegistry({ auth: 'none' }), startFleet(3, path)])
  repo = `${reg.host}/${uniqueName('fleet3')}/app`
  for (const v of ['v1', 'v2']) {
    buildAppImage({ tag: `${repo}:${v}`, version: v })
    execFileSync('docker', ['push', '-q', `${repo}:${v}`], { stdio: 'ignore' })
  }
  writeFileSync(join(dir, 'docker-compose.yml'), FLEET_COMPOSE)
}, 120_000)

afterAll(async () => {
  for (const h of fleet?.hosts ?? []) removeProject(h.path, h.project)
  removeRepository(repo)
  await Promise.all([reg?.stop(), fleet?.stop()])
  rmSync(dir, { recursive: true, force: true })
})

function opts(version: string): DeployOptions {
  return {
    hosts: fleet.labels,
    connect: label => fleet.connect(label),
    path,
    healthTimeout: 60,
    lockTimeout: 60,
    maxParallel: 2,
    log: quietLog(),
    composeFiles: [join(dir, 'docker-compose.yml')],
    envFile: 'APP_PORT=@PORT@\nAPP_INNER_PORT=@INNER@\n',
    images: [`app=${repo}:${version}`],
    version,
    autoRollback: true,
    keepReleases: 5,
    resolveDigest: digestResolver(reg),
    stableSeconds: 2
  }
}

async function versions(): Promise<string[]> {
  return Promise.all(
    fleet.hosts.map(async h => {
      try {
        return (
          await (
            await fetch(`http://127.0.0.1:${h.port}/version`, { signal: AbortSignal.timeout(3000) })
          ).text()
        ).trim()
      } catch {
        return ''
      }
    })
  )
}

it('deploys to every host, canary first', async () => {
  const r = await deploy(opts('v1'))
  expect(r.status).toBe('deployed')
  expect(r.hosts.map(h => h.status)).toEqual(['deployed', 'deployed', 'deployed'])
  expect(r.connections).toBe(3)
  expect(await versions()).toEqual(['v1', 'v1', 'v1'])
})

it('a broken canary: rolled back there, no other host touched', async () => {
  fleet.breakHost(0)
  const r = await deploy(opts('v2')).finally(() => fleet.breakHost(undefined))
  expect(r.status).toBe('rolled-back')
  expect(r.hosts.map(h => h.status)).toEqual(['rolled-back', 'skipped', 'skipped'])
  expect(await versions()).toEqual(['v1', 'v1', 'v1'])
})

it('the last host failing sends the switched hosts back: all on v1, a row per host', async () => {
  fleet.breakHost(2)
  const r = await deploy(opts('v2')).finally(() => fleet.breakHost(undefined))
  expect(r.status).toBe('rolled-back')
  expect(r.version).toBe('v1')
  expect(r.hosts.map(h => h.status)).toEqual(['reverted', 'reverted', 'rolled-back'])
  expect(await versions()).toEqual(['v1', 'v1', 'v1'])
  const rows = summaryTable('deploy-ssh', r.hosts)
    .split('\n')
    .filter(l => l.startsWith('| root@'))
  expect(rows).toHaveLength(3)
  expect(rows[0]).toMatch(/\| reverted \|.*went back to v1/)
})

it('the next good release goes everywhere; each host opened one connection per deploy', async () => {
  const before = fleet.connections
  const r = await deploy(opts('v2'))
  expect(r.status).toBe('deployed')
  expect(await versions()).toEqual(['v2', 'v2', 'v2'])
  for (const h of fleet.hosts)
    expect(execFileSync('readlink', [`${h.path}/.shipline/current`], { encoding: 'utf8' }).trim()).toBe(
      `releases/${r.releaseId}`
    )
  expect(fleet.connections - before).toBe(3)
})

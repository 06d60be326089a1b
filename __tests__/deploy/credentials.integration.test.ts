/**
 * Credentials stay inside their boundary (dist/deploy-ssh as the runner runs it, real sshd, dockerd,
 * docker-compose v1): `registry-password` goes only to the registry it is for. A second registry, behind a
 * recording proxy, plays the third party: it must never see an Authorization header, neither from the
 * runner's digest resolution nor from the host's pull. Images spanning registries with a password and no
 * `registry` are refused before anything connects.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startFaultProxy, type FaultProxy } from '../../src/testkit/fault-proxy.js'
import { buildAppImage, removeImages, removeRepository } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { dockerLogin, startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { runActionBundle } from '../../src/testkit/runner.js'
import { startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { liveVersion, workspace, type Workspace } from './helpers.js'

let mine: TestRegistry
let other: TestRegistry
let third: FaultProxy
let sshd: Sshd
let ws: Workspace
let repoA: string
let repoB: string

beforeAll(async () => {
  ;[mine, other, sshd] = await Promise.all([
    startRegistry({ auth: 'htpasswd' }),
    startRegistry({ auth: 'none' }),
    startSshd()
  ])
  third = await startFaultProxy(other.url)
  ws = workspace()
  writeFileSync(
    join(ws.dir, 'two-registries.yml'),
    [
      'services:',
      ...['web', 'side'].flatMap(s => [
        `  ${s}:`,
        '    image: placeholder.invalid/x:0',
        '    init: true',
        '    stop_grace_period: 1s',
        ...(s === 'web' ? ['    ports: ["127.0.0.1::8080"]'] : [])
      ])
    ].join('\n') + '\n'
  )
  const name = uniqueName('cred')
  repoA = `${mine.host}/${name}/web`
  repoB = `${third.host}/${name}/side`
  buildAppImage({ tag: `${repoA}:v1`, version: 'v1' })
  const login = dockerLogin(mine)
  try {
    execFileSync('docker', ['--config', login.config, 'push', '-q', `${repoA}:v1`], { stdio: 'ignore' })
  } finally {
    login.remove()
  }
  // pushed to the third party directly; the deploy reaches it only through the recording proxy
  const direct = `${other.host}/${name}/side:v1`
  execFileSync('docker', ['tag', `${repoA}:v1`, direct])
  execFileSync('docker', ['push', '-q', direct], { stdio: 'ignore' })
  // the host has to pull both
  removeImages(`${repoA}:v1`, direct)
  third.requests.length = 0
}, 120_000)

afterAll(async () => {
  ws?.cleanup()
  removeRepository(repoA)
  removeRepository(repoB)
  removeRepository(repoB.replace(third.host, other.host))
  await Promise.all([mine?.stop(), other?.stop(), third?.stop(), sshd?.stop()])
})

function inputs(path: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    hosts: `${sshd.host}:${sshd.port}`,
    'ssh-key': sshd.clientKey.privateKey,
    'known-hosts': sshd.knownHostsLine,
    path,
    'compose-file': 'two-registries.yml',
    images: `web=${repoA}:v1\nside=${repoB}:v1`,
    version: 'v1',
    'registry-username': mine.username,
    'registry-password': mine.password,
    'health-timeout': '60',
    ...extra
  }
}

describe('registry-password goes only to its registry', () => {
  it('images from two registries, a password and no registry: refused before connecting, naming the fix', async () => {
    const path = ws.path()
    const r = await runActionBundle({ action: 'deploy-ssh', inputs: inputs(path), cwd: ws.dir })
    expect(r.exitCode).not.toBe(0)
    expect(r.stdout).toMatch(
      /names images from several registries .* and 'registry-password' is set without 'registry': say which registry the password is for/
    )
    expect(third.requests).toEqual([])
    expect(sshd.logLines(/Accepted publickey/)).toEqual([])
  })

  it("with 'registry' named: the other registry is asked (and pulled from) anonymously, and the deploy works", async () => {
    const path = ws.path()
    const r = await runActionBundle({
      action: 'deploy-ssh',
      inputs: inputs(path, { registry: mine.host }),
      cwd: ws.dir
    })
    expect(r.stderr + r.stdout).not.toMatch(/::error::/)
    expect(r.outputs.status).toBe('deployed')
    expect(await liveVersion(path)).toBe('v1')
    // the third party was asked for the manifest (runner) and served the pull (host), never with credentials
    // (its layers are web's too, so the host's pull fetches only the manifest: at least two manifest reads)
    expect(third.requests.filter(q => /\/manifests\//.test(q.path)).length).toBeGreaterThanOrEqual(2)
    expect(third.requests.filter(q => q.authorization)).toEqual([])
  })
})

/**
 * dist/deploy-ssh and dist/rollback with `strategy: blue-green`, run the way the Actions runner runs them
 * (runActionBundle), against a real sshd, the Docker engine and docker-compose, a registry and a real
 * nginx, with steady load through nginx: no request fails across a deploy and a rollback. Input mistakes
 * are refused before anything connects. Needs built bundles (`npm run build`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { upstreamName } from '../../src/lib/strategy/blue-green.js'
import { buildAppImage, removeImages } from '../../src/testkit/images.js'
import { startLoad } from '../../src/testkit/load.js'
import { freePort, uniqueName } from '../../src/testkit/net.js'
import { startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { runActionBundle } from '../../src/testkit/runner.js'
import { startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { losses, projectsOf, removeProjects } from './helpers.js'

describe('dist/deploy-ssh and dist/rollback with strategy: blue-green', () => {
  let reg: TestRegistry
  let sshd: Sshd
  let nginx: Nginx
  const ws = mkdtempSync(join(tmpdir(), 'shipline-bgb-ws-'))
  const base = mkdtempSync(join(tmpdir(), 'shipline-bgb-'))
  const path = `${base}/app`
  const run = uniqueName('r')
  let image = ''
  let ports = ''

  beforeAll(async () => {
    ;[reg, sshd] = await Promise.all([startRegistry({ auth: 'none' }), startSshd()])
    image = `${reg.host}/${run.toLowerCase()}`
    for (const v of ['v1', 'v2']) {
      buildAppImage({ tag: `${image}:${v}`, version: `${v}_${run}` })
      execFileSync('docker', ['push', '-q', `${image}:${v}`], { stdio: 'ignore' })
    }
    mkdirSync(`${path}/nginx`, { recursive: true })
    nginx = await startNginx({ includeFile: `${path}/nginx/web.conf`, upstreamName: upstreamName('web') })
    writeFileSync(
      join(ws, 'docker-compose.yml'),
      'services:\n  web:\n    image: placeholder\n    init: true\n    mem_limit: 32m\n    network_mode: bridge\n    ports: ["127.0.0.1:${SHIPLINE_PORT_WEB}:8080"]\n'
    )
    ports = `web=${await freePort()},${await freePort()}`
  }, 120_000)

  afterAll(async () => {
    removeProjects(...projectsOf(path))
    await nginx?.stop()
    await Promise.all([sshd?.stop(), reg?.stop()])
    removeImages(`${image}:v1`, `${image}:v2`)
    rmSync(ws, { recursive: true, force: true })
    rmSync(base, { recursive: true, force: true })
  })

  const inputs = (extra: Record<string, string> = {}): Record<string, string> => ({
    hosts: `${sshd.host}:${sshd.port}`,
    'ssh-key': sshd.clientKey.privateKey,
    'known-hosts': sshd.knownHostsLine,
    path,
    strategy: 'blue-green',
    'blue-green-ports': ports,
    'nginx-include-dir': `${path}/nginx`,
    'nginx-test-command': nginx.testCommand,
    'nginx-reload-command': nginx.reloadCommand,
    'drain-seconds': '1',
    'min-free-memory': '16',
    'health-timeout': '60',
    ...extra
  })
  const version = async () => (await (await fetch(`${nginx.url}/version`)).text()).trim().split('_')[0]

  it('refuses bad strategy inputs before connecting', async () => {
    for (const [extra, msg] of [
      [{ strategy: 'rolling' }, /Input 'strategy' must be 'recreate' or 'blue-green'/],
      [{ 'blue-green-ports': 'web=8001' }, /blue-green-ports/],
      [{ target: 'kubernetes' }, /Input 'target' must be 'compose' or 'swarm'/],
      [{ target: 'swarm' }, /start-first already/]
    ] as const) {
      const r = await runActionBundle({
        action: 'deploy-ssh',
        inputs: inputs({
          ...extra,
          'compose-file': 'docker-compose.yml',
          images: `web=${image}:v1`,
          version: 'v1'
        }),
        cwd: ws
      })
      expect(r.exitCode).toBe(1)
      expect(r.annotations.map(a => a.message).join('\n')).toMatch(msg)
      expect(sshd.logLines(/Accepted publickey/)).toEqual([])
    }
  }, 120_000)

  it('deploys two releases and rolls back under load without a failed request', async () => {
    const deployV = (v: string) =>
      runActionBundle({
        action: 'deploy-ssh',
        inputs: inputs({ 'compose-file': 'docker-compose.yml', images: `web=${image}:${v}`, version: v }),
        cwd: ws
      })
    const r1 = await deployV('v1')
    expect(r1.annotations.filter(a => a.level === 'error')).toEqual([])
    expect(r1.outputs.status).toBe('deployed')
    expect(await version()).toBe('v1')
    const load = startLoad({ url: `${nginx.url}/version`, rate: 40 })
    const r2 = await deployV('v2')
    expect(r2.outputs).toMatchObject({ status: 'deployed', version: 'v2', 'previous-version': 'v1' })
    expect(r2.stdout).toMatch(/nginx now sends shipline_web to the green slot/)
    expect(await version()).toBe('v2')
    const rb = await runActionBundle({ action: 'rollback', inputs: inputs(), cwd: ws })
    expect(rb.annotations.filter(a => a.level === 'error')).toEqual([])
    expect(rb.outputs).toMatchObject({ 'from-version': 'v2', 'to-version': 'v1' })
    expect(await version()).toBe('v1')
    const res = await load.stop()
    expect(res.sent).toBeGreaterThan(0)
    expect(losses(res)).toEqual({
      bad: 0,
      non2xx: {},
      failed: {}
    })
  }, 300_000)
})

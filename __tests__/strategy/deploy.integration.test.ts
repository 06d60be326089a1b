/**
 * strategy: blue-green through deploy() and rollback() over a real sshd, with the real registry, Docker
 * engine, docker-compose and nginx, under steady load through nginx: two releases, a release that never
 * turns healthy (the live slot keeps serving, status rolled-back), a rollback, and not one failed request.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy, rollback } from '../../src/lib/deploy/index.js'
import type { DeployOptions } from '../../src/lib/deploy/types.js'
import { upstreamName } from '../../src/lib/strategy/blue-green.js'
import { startLoad } from '../../src/testkit/load.js'
import { freePort, uniqueName } from '../../src/testkit/net.js'
import { blueGreenBehind, startNginx, type Nginx } from '../../src/testkit/nginx.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { sshFleet, startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { headDigest, ledgerEvents, losses, pushApps, teardown } from './helpers.js'

describe('deploy-ssh with strategy: blue-green', () => {
  let reg: TestRegistry
  let sshd: Sshd
  let nginx: Nginx
  const base = mkdtempSync(join(tmpdir(), 'shipline-bgd-'))
  const path = `${base}/app`
  const run = uniqueName('r')
  let image = ''
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  let common: Omit<DeployOptions, 'images' | 'version'>

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'none' })
    sshd = await startSshd()
    image = `${reg.host}/${run.toLowerCase()}`
    pushApps(image, run, ['v1', 'v2', 'bad'])
    mkdirSync(`${path}/nginx`, { recursive: true })
    nginx = await startNginx({ includeFile: `${path}/nginx/web.conf`, upstreamName: upstreamName('web') })
    const compose = join(base, 'docker-compose.yml')
    writeFileSync(
      compose,
      [
        'services:',
        '  web:',
        '    image: placeholder',
        '    init: true',
        '    mem_limit: 32m',
        // the default bridge: no network per slot project (the engine's address pools are few)
        '    network_mode: bridge',
        '    ports: ["127.0.0.1:${SHIPLINE_PORT}:8080"]',
        ''
      ].join('\n')
    )
    const [a, b] = [await freePort(), await freePort()]
    common = {
      ...sshFleet(sshd),
      path,
      healthTimeout: 60,
      lockTimeout: 60,
      log,
      stableSeconds: 1,
      composeFiles: [compose],
      autoRollback: true,
      keepReleases: 5,
      runtime: blueGreenBehind(nginx, {
        ports: `web=${a},${b}`,
        includeDir: `${path}/nginx`,
        drainSeconds: 1
      }),
      resolveDigest: headDigest(reg.url)
    }
  }, 180_000)

  afterAll(() =>
    teardown({
      paths: [path],
      parts: [nginx, sshd, reg],
      images: ['v1', 'v2', 'bad'].map(v => `${image}:${v}`),
      dir: base
    })
  )

  const version = async () => (await (await fetch(`${nginx.url}/version`)).text()).trim().split('_')[0]

  it('deploys, survives a bad release and rolls back without a failed request', async () => {
    const r1 = await deploy({ ...common, images: [`web=${image}:v1`], version: 'v1' })
    expect(r1.error).toBeUndefined()
    expect(r1.status).toBe('deployed')
    expect(await version()).toBe('v1')

    const load = startLoad({ url: `${nginx.url}/version`, rate: 40 })
    const r2 = await deploy({ ...common, images: [`web=${image}:v2`], version: 'v2' })
    expect(r2.status).toBe('deployed')
    expect(await version()).toBe('v2')

    const r3 = await deploy({ ...common, images: [`web=${image}:bad`], version: 'bad' })
    expect(r3.status).toBe('rolled-back')
    expect(r3.version).toBe('v2')
    expect(await version()).toBe('v2')
    expect(logs.join('\n')).toMatch(/v2 still serves from the green slot/)

    const rb = await rollback({ ...common, to: 'v1' })
    expect(rb.status).toBe('rolled-back')
    expect(await version()).toBe('v1')
    const res = await load.stop()
    expect(res.sent).toBeGreaterThan(0)
    expect(losses(res)).toEqual({
      bad: 0,
      non2xx: {},
      failed: {}
    })

    expect(ledgerEvents(path)).toEqual(['deploy v1', 'deploy v2', 'auto-rollback v2', 'rollback v1'])
    expect(readFileSync(`${path}/nginx/web.conf`, 'utf8')).toMatch(/upstream shipline_web/)
  }, 300_000)

  it('keeps the old slot stopped after a switch: a rollback to it starts those containers again instead of new ones', async () => {
    const r = await deploy({ ...common, images: [`web=${image}:v2`], version: 'v2-again' })
    expect(r.status).toBe('deployed')
    expect(readFileSync(`${path}/.shipline/kept`, 'utf8')).toMatch(/^(blue|green) \S+\n$/)
    logs.length = 0
    const rb = await rollback({ ...common })
    expect(rb.status).toBe('rolled-back')
    expect(await version()).toBe('v1')
    expect(logs.join('\n')).toMatch(/was kept stopped in (blue|green): started again/)
    // the slot v2 ran in is kept now, for the way back
    expect(readFileSync(`${path}/.shipline/kept`, 'utf8')).toMatch(/^(blue|green) \S+\n$/)
    const again = await deploy({ ...common, images: [`web=${image}:v2`], version: 'v2-third' })
    expect(again.status).toBe('deployed')
    expect(await version()).toBe('v2')
  }, 300_000)
})

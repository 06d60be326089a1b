/**
 * The caddy adapter on a real caddy 2.6 (src/testkit/caddy.ts, admin on a free loopback port, HOME/XDG in
 * a temp dir) in front of two node:http backends, the host being this machine (LocalRemote): switches
 * under keep-alive load lose no request (admin API, no reload); a refused step leaves the previous
 * routing serving.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { CaddyAdapter, caddyShares, caddyUpstreams } from '../../src/lib/proxy/caddy.js'
import { ProxyError, upstreamName } from '../../src/lib/proxy/types.js'
import { localRemote } from '../../src/testkit/local-remote.js'
import { startCaddy, type Caddy } from '../../src/testkit/caddy.js'
import { routing, startBackends, switchSequence, underLoad, type Backends } from './helpers.js'

describe('caddy adapter', () => {
  let be: Backends
  let caddy: Caddy
  const host = { remote: localRemote('local'), label: 'local' }

  beforeAll(async () => {
    be = await startBackends()
    caddy = await startCaddy({ id: upstreamName('web'), initialPort: be.a })
  })
  afterAll(async () => {
    await caddy?.stop()
    await be?.stop()
  })

  it('weights as repeated upstreams (caddy 2.6 has no weighted policy), read back as shares of 100', () => {
    const list = caddyUpstreams([
      { port: 8001, weight: 95 },
      { port: 8002, weight: 5 }
    ])
    expect(list).toHaveLength(20)
    expect(list.filter(u => u.dial === '127.0.0.1:8002')).toHaveLength(1)
    expect(caddyShares(list)).toEqual([
      { port: 8001, weight: 95, state: 'ready' },
      { port: 8002, weight: 5, state: 'ready' }
    ])
    expect(
      caddyUpstreams([
        { port: 8001, weight: 0 },
        { port: 8002, weight: 100 }
      ])
    ).toEqual([{ dial: '127.0.0.1:8002' }])
  })

  it('A → 50/50 → B under keep-alive load: no 5xx, at most a reset per change, read back as set', async () => {
    const proxy = new CaddyAdapter(host, { admin: caddy.admin })
    const run = await switchSequence(proxy, caddy.url, be)
    console.log(`caddy switch under load: ${JSON.stringify(run.load)}`)
    // each change replaces caddy's server config; the old server's shutdown closes idle keep-alive
    // connections, so a client writing at that instant may see a reset (as with an nginx reload)
    expect(Object.keys(run.load.failed).filter(k => k !== 'ECONNRESET')).toEqual([])
    expect(run.load.failed.ECONNRESET ?? 0).toBeLessThanOrEqual(3)
    expect(run.load.non2xx).toEqual({})
    expect(routing(await proxy.readBack('web'))).toEqual([`${be.b}:100`])
  })

  it('an unknown handler, or one refused among several, leaves the previous routing serving, and says so', async () => {
    const proxy = new CaddyAdapter(host, { admin: caddy.admin })
    proxy.setWeights('web', [{ port: be.a, weight: 100 }])
    await proxy.apply()
    proxy.setWeights('nope', [{ port: be.b, weight: 100 }])
    await expect(proxy.test()).rejects.toThrow(/no config object "@id": "shipline_nope"/)
    // web switches first, then nope is refused (404): web goes back to A
    proxy.setWeights('web', [{ port: be.b, weight: 100 }])
    const run = await underLoad(caddy.url, [
      async () => {
        const e = (await proxy.apply().catch((x: unknown) => x)) as ProxyError
        expect(e).toBeInstanceOf(ProxyError)
        expect(e.restored).toBe(true)
        expect(e.message).toMatch(/'nope' failed.*previous routing was put back/)
      }
    ])
    expect(routing(await proxy.readBack('web'))).toEqual([`${be.a}:100`])
    expect(run.phases[0]).toEqual({ A: expect.any(Number) })
    expect(run.load.bad).toBe(0)

    // caddy itself refuses a config it cannot load (an unknown field) and keeps the one it has
    const r = await host.remote.exec(
      [
        'curl',
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'PATCH',
        '-H',
        'Content-Type: application/json',
        '--data-binary',
        '[{"dial":"127.0.0.1:1","no_such_field":1}]',
        `${caddy.admin}/id/${upstreamName('web')}/upstreams`
      ],
      { timeoutMs: 10_000 }
    )
    expect(r.stdout).toBe('500') // caddy 2.6.2 answers 500 for a config it cannot load (measured)
    expect(routing(await proxy.readBack('web'))).toEqual([`${be.a}:100`])
  })
})

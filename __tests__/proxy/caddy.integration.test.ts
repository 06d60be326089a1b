/**
 * The caddy adapter on a real caddy 2.6 (src/testkit/caddy.ts, admin on a free loopback port, HOME/XDG in
 * a temp dir) in front of two node:http backends, the host being this machine (LocalRemote): switches
 * under keep-alive load lose no request (admin API, no reload); a refused step leaves the previous
 * routing serving, also when the change runs later as switchArgv()'s argv (CADDY_SCRIPT): a caddy of its
 * own per case with two handlers (web catch-all, api on Host api.test).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { CaddyAdapter, caddyShares, caddyUpstreams } from '../../src/lib/proxy/caddy.js'
import { ProxyError, upstreamName } from '../../src/lib/proxy/types.js'
import { localRemote } from '../../src/testkit/local-remote.js'
import { startCaddy, type Caddy } from '../../src/testkit/caddy.js'
import { freePort, waitForHttp } from '../../src/testkit/net.js'
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

  describe('switchArgv() run later on the host', () => {
    let cd: Caddy
    const web = upstreamName('web')
    const api = upstreamName('api')

    beforeEach(async () => {
      cd = await startCaddy({
        id: web,
        initialPort: be.a,
        more: [{ id: api, initialPort: be.a, host: 'api.test' }]
      })
    })
    afterEach(async () => {
      await cd?.stop()
    })

    /** curl on the host against caddy's admin API: status and body */
    const admin = async (
      base: string,
      method: string,
      path: string,
      body?: string
    ): Promise<{ status: number; body: string }> => {
      const argv = ['curl', '-sS', '--max-time', '10', '-X', method, '-o', '-', '-w', '\n%{http_code}']
      if (body !== undefined) argv.push('-H', 'Content-Type: application/json', '--data-binary', body)
      const r = await host.remote.exec([...argv, `${base}${path}`], { timeoutMs: 15_000 })
      expect(r.code).toBe(0)
      const i = r.stdout.lastIndexOf('\n')
      return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) }
    }
    /** the upstreams of the route serving Host `api.test` (routes/0, found by path: its @id may be gone) */
    const apiUpstreams = async (base: string): Promise<unknown> =>
      JSON.parse(
        (await admin(base, 'GET', '/config/apps/http/servers/shipline/routes/0/handle/0/upstreams')).body
      )
    /** who answers through caddy: bodies of `n` requests (Host api.test when `hostName` is set) */
    const answers = async (hostName?: string, n = 6): Promise<string[]> => {
      const out: string[] = []
      for (let i = 0; i < n; i++) {
        const r = await host.remote.exec(
          ['curl', '-sS', '--max-time', '5', ...(hostName ? ['-H', `Host: ${hostName}`] : []), `${cd.url}/`],
          { timeoutMs: 10_000 }
        )
        out.push(r.code === 0 ? r.stdout : `curl exit ${r.code}`)
      }
      return out
    }
    const plan = async (proxy: CaddyAdapter): Promise<string[]> => {
      proxy.setWeights('web', [{ port: be.b, weight: 100 }])
      proxy.setWeights('api', [{ port: be.b, weight: 100 }])
      return proxy.switchArgv()
    }

    it('both handlers switch in one run', async () => {
      const proxy = new CaddyAdapter(host, { admin: cd.admin })
      const ok = await host.remote.exec(await plan(proxy), { timeoutMs: 30_000 })
      expect(ok).toEqual({ code: 0, stdout: 'done\n', stderr: '' })
      expect(routing(await proxy.readBack('web'))).toEqual([`${be.b}:100`])
      expect(routing(await proxy.readBack('api'))).toEqual([`${be.b}:100`])
      expect(await answers()).toEqual(Array(6).fill('B'))
      expect(await answers('api.test')).toEqual(Array(6).fill('B'))
    })

    it('the second handler refused (its @id gone after planning): exit 20, the first one put back as it was, traffic on A', async () => {
      const proxy = new CaddyAdapter(host, { admin: cd.admin })
      const webBefore = JSON.parse((await admin(cd.admin, 'GET', `/id/${web}/upstreams`)).body) as unknown
      const apiBefore = await apiUpstreams(cd.admin)
      expect(webBefore).toEqual([{ dial: `127.0.0.1:${be.a}` }])
      const argv = await plan(proxy)
      expect(argv.slice(0, 5)).toEqual(['sh', '-c', expect.any(String), 'sh', cd.admin])
      expect(argv.filter((_, i) => i >= 5 && (i - 5) % 4 === 0)).toEqual([web, api]) // web is changed first

      // the handler stays and serves; only its tag goes, so caddy has no /id/shipline_api any more
      expect((await admin(cd.admin, 'DELETE', `/id/${api}/@id`)).status).toBe(200)
      expect((await admin(cd.admin, 'GET', `/id/${api}`)).status).toBe(404)

      let bad = { code: -1, stdout: '', stderr: '' }
      const run = await underLoad(cd.url, [
        async () => {
          bad = await host.remote.exec(argv, { timeoutMs: 30_000 })
        }
      ])
      expect(bad.code).toBe(20)
      expect(bad.stdout).toBe(`ERR ${api}: caddy answered 404\n`) // caddy 2.6.2: unknown object ID (measured)
      // the put-back: web's upstreams read back exactly as before the switch, api's untouched
      expect(JSON.parse((await admin(cd.admin, 'GET', `/id/${web}/upstreams`)).body)).toEqual(webBefore)
      expect(await apiUpstreams(cd.admin)).toEqual(apiBefore)
      expect(routing(await proxy.readBack('web'))).toEqual([`${be.a}:100`])
      // traffic still reaches A: after the run (the load's phase) and request by request
      expect(run.phases[0]).toEqual({ A: expect.any(Number) })
      expect(Object.keys(run.load.failed).filter(k => k !== 'ECONNRESET')).toEqual([])
      expect(run.load.non2xx).toEqual({})
      expect(await answers()).toEqual(Array(6).fill('A'))
      expect(await answers('api.test')).toEqual(Array(6).fill('A'))
    })

    it('the put-back refused too (the old upstreams unloadable): exit 20, the ERR line names the half-switched handler', async () => {
      const proxy = new CaddyAdapter(host, { admin: cd.admin })
      const argv = await plan(proxy)
      // web's put-back body becomes one caddy cannot load; api's @id goes, so api is refused and web is put back
      const i = argv.indexOf(web)
      argv[i + 3] = '[{"dial":"127.0.0.1:1","no_such_field":1}]'
      expect((await admin(cd.admin, 'DELETE', `/id/${api}/@id`)).status).toBe(200)

      const r = await host.remote.exec(argv, { timeoutMs: 30_000 })
      expect(r.code).toBe(20)
      expect(r.stdout).toBe(
        `ERR ${api}: caddy answered 404; putting back failed too for ${web}: check caddy's routes\n`
      )
      expect(routing(await proxy.readBack('web'))).toEqual([`${be.b}:100`]) // half-switched, as the line says
      expect(await answers('api.test')).toEqual(Array(6).fill('A'))
    })

    it('caddy not answering at all (its admin endpoint moved away after planning): exit 21, routing unchanged', async () => {
      const proxy = new CaddyAdapter(host, { admin: cd.admin })
      const argv = await plan(proxy)

      // caddy's admin endpoint goes to another free port: nothing listens at the planned one any more
      const moved = `http://127.0.0.1:${await freePort()}`
      expect(
        (await admin(cd.admin, 'PATCH', '/config/admin/listen', JSON.stringify(moved.slice(7)))).status
      ).toBe(200)
      await waitForHttp(`${moved}/config/`, 10_000, s => s === 200)
      for (let i = 0; ; i++) {
        const r = await host.remote.exec(['curl', '-sS', '--max-time', '2', `${cd.admin}/config/`], {
          timeoutMs: 5000
        })
        if (r.code === 7) break // connection refused
        expect(i).toBeLessThan(50)
        await new Promise(res => setTimeout(res, 100))
      }

      const r = await host.remote.exec(argv, { timeoutMs: 30_000 })
      expect(r.code).toBe(21)
      expect(r.stdout).toMatch(new RegExp(`^ERR ${web}: caddy did not answer: .*curl: \\(7\\)`, 'm'))
      expect(r.stdout).not.toMatch(/done/)

      const now = new CaddyAdapter(host, { admin: moved })
      expect(JSON.parse((await admin(moved, 'GET', `/id/${web}/upstreams`)).body)).toEqual([
        { dial: `127.0.0.1:${be.a}` }
      ])
      expect(routing(await now.readBack('api'))).toEqual([`${be.a}:100`])
      expect(await answers()).toEqual(Array(6).fill('A'))
      expect(await answers('api.test')).toEqual(Array(6).fill('A'))
    })
  })
})

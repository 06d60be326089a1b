/**
 * The haproxy adapter on a real haproxy (src/testkit/haproxy.ts, admin socket in a temp dir) in front of
 * two node:http backends, the host being this machine (LocalRemote): switches under keep-alive load lose
 * no request (runtime API, no reload); a refused step leaves the previous routing serving.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { HaproxyAdapter } from '../../src/lib/proxy/haproxy.js'
import { ProxyError, upstreamName } from '../../src/lib/proxy/types.js'
import { localRemote } from '../../src/testkit/local-remote.js'
import { startHaproxy, type Haproxy } from '../../src/testkit/haproxy.js'
import { routing, startBackends, switchSequence, underLoad, type Backends } from './helpers.js'

describe('haproxy adapter', () => {
  let be: Backends
  let hx: Haproxy
  const host = { remote: localRemote('local'), label: 'local' }

  beforeAll(async () => {
    be = await startBackends()
    hx = await startHaproxy({
      backends: [
        { name: upstreamName('web'), initialPort: be.a },
        { name: upstreamName('static'), initialPort: be.a, balance: 'static-rr' }
      ]
    })
  })
  afterAll(async () => {
    await hx?.stop()
    await be?.stop()
  })

  it('A → 50/50 → B under keep-alive load: no failed request, read back as set, state file saved', async () => {
    const proxy = new HaproxyAdapter(host, { socket: hx.socket, stateFile: `${hx.dir}/server-state` })
    const run = await switchSequence(proxy, hx.url, be)
    expect(run.load.failed).toEqual({})
    expect(run.load.non2xx).toEqual({})
    expect(run.load.bad).toBe(0)
    expect(routing(await proxy.readBack('web'))).toEqual([`${be.b}:100`])
    expect((await proxy.readBack('web')).find(s => s.port === be.a)?.state).toBe('drain')
    expect(readFileSync(`${hx.dir}/server-state`, 'utf8')).toContain(upstreamName('web'))
    console.log(`haproxy switch under load: ${JSON.stringify(run.load)}`)
  })

  it('an unknown server or a refused weight leaves the previous routing serving, and says so', async () => {
    const proxy = new HaproxyAdapter(host, { socket: hx.socket })
    proxy.setWeights('web', [{ port: be.a, weight: 100 }])
    await proxy.apply()
    const wrong = new HaproxyAdapter(host, { socket: hx.socket, servers: ['s0', 's7'] })
    wrong.setWeights('web', [{ port: be.b, weight: 100 }])
    await expect(wrong.test()).rejects.toThrow(/has no server s7/)
    await expect(wrong.apply()).rejects.toThrow(/has no server s7/)
    expect(routing(await proxy.readBack('web'))).toEqual([`${be.a}:100`])

    // static-rr takes only 0 and 100: the 50 is refused after the address moved, and all goes back
    const before = await proxy.readBack('static')
    proxy.setWeights('static', [
      { port: be.a, weight: 50 },
      { port: be.b, weight: 50 }
    ])
    const run = await underLoad(hx.url, [
      async () => {
        const e = (await proxy.apply().catch((x: unknown) => x)) as ProxyError
        expect(e).toBeInstanceOf(ProxyError)
        expect(e.restored).toBe(true)
        expect(e.message).toMatch(/static LB algorithm.*previous routing was put back/)
      }
    ])
    expect(await proxy.readBack('static')).toEqual(before)
    expect(run.phases[0]).toEqual({ A: expect.any(Number) })
    expect(run.load.bad).toBe(0)
  })

  it('switchArgv(): the change as one argv run later; a refused command sends the --undo put-back', async () => {
    const proxy = new HaproxyAdapter(host, { socket: hx.socket })
    proxy.setWeights('static', [{ port: be.a, weight: 100 }])
    await proxy.apply()
    const before = await proxy.readBack('static')
    proxy.setWeights('static', [
      { port: be.a, weight: 50 },
      { port: be.b, weight: 50 }
    ])
    const argv = await proxy.switchArgv()
    const bad = await host.remote.exec(argv)
    expect(bad.code).toBe(20)
    expect(bad.stdout).toMatch(/^ERR set server shipline_static\/s\d weight 50: /m)
    expect(await proxy.readBack('static')).toEqual(before)

    // the same run with a put-back refused too: named in the ERR line (the put-back commands before it ran)
    const worse = await host.remote.exec([...argv, 'set server shipline_static/s99 weight 1'])
    expect(worse.code).toBe(20)
    expect(worse.stdout).toMatch(
      /^ERR set server shipline_static\/s\d weight 50: .*; putting the previous servers back failed too \(.*No such server.*\)/m
    )
    expect(await proxy.readBack('static')).toEqual(before)

    proxy.setWeights('web', [
      { port: be.a, weight: 90 },
      { port: be.b, weight: 10 }
    ])
    const ok = await host.remote.exec(await proxy.switchArgv())
    expect(ok.code).toBe(0)
    expect(routing(await proxy.readBack('web')).sort()).toEqual([`${be.a}:90`, `${be.b}:10`].sort())
  })
})

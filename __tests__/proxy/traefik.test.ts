/** The Traefik dynamic file (argument level: no Traefik here): weighted service over per-port services. */
import { describe, expect, it } from '@jest/globals'
import { parse } from 'yaml'
import { traefikDynamicFile } from '../../src/lib/proxy/traefik.js'

describe('traefik dynamic file', () => {
  it('routes by weight through a weighted service, leaving out weight 0', () => {
    const canary = parse(
      traefikDynamicFile('web', [
        { port: 8001, weight: 95 },
        { port: 8002, weight: 5 }
      ])
    ) as { http: { services: Record<string, unknown> } }
    expect(canary.http.services).toEqual({
      shipline_web: {
        weighted: {
          services: [
            { name: 'shipline_web_8001', weight: 95 },
            { name: 'shipline_web_8002', weight: 5 }
          ]
        }
      },
      shipline_web_8001: { loadBalancer: { servers: [{ url: 'http://127.0.0.1:8001' }] } },
      shipline_web_8002: { loadBalancer: { servers: [{ url: 'http://127.0.0.1:8002' }] } }
    })
    const done = parse(
      traefikDynamicFile('web', [
        { port: 8001, weight: 0 },
        { port: 8002, weight: 100 }
      ])
    ) as { http: { services: Record<string, unknown> } }
    expect(Object.keys(done.http.services).sort()).toEqual(['shipline_web', 'shipline_web_8002'])
    expect(() => traefikDynamicFile('web', [{ port: 8001, weight: 0 }])).toThrow(/every weight is 0/)
  })
})

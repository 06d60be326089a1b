/** probe-checks & co are checked against the strategy before anything connects; every error names the input. */
import { describe, expect, it } from '@jest/globals'
import { parseProbe, probeFailure } from '../../src/lib/smoke/probe.js'

const text = (o: Partial<Parameters<typeof parseProbe>[0]> = {}) => ({
  checks: '',
  port: '',
  service: '',
  timeoutSec: 30,
  requestTimeoutSec: 5,
  ...o
})
const recreate = { strategy: 'recreate' as const, target: 'compose' as const, slotServices: [] }
const bg = { strategy: 'blue-green' as const, target: 'compose' as const, slotServices: ['web', 'api'] }

describe('parseProbe', () => {
  it('no probe-checks: no probe; probe-port or probe-service alone is refused', () => {
    expect(parseProbe(text(), recreate)).toBeUndefined()
    expect(() => parseProbe(text({ port: '8080' }), recreate)).toThrow(
      /Input 'probe-port' is set without 'probe-checks'/
    )
    expect(() => parseProbe(text({ service: 'web' }), bg)).toThrow(/'probe-service' is set without/)
  })

  it('"default" gives smoke-test\'s three checks; YAML is parsed as smoke-test\'s checks', () => {
    const p = parseProbe(text({ checks: 'default', port: '8080' }), recreate)
    expect(p?.checks.map(c => c.path)).toEqual(['/health', '/readyz', '/metrics'])
    expect(p?.port).toBe(8080)
    const y = parseProbe(text({ checks: '- path: /ping\n  status: 204', port: '81' }), recreate)
    expect(y?.checks).toMatchObject([{ path: '/ping', status: [204] }])
    expect(() => parseProbe(text({ checks: '- path: /x\n  colour: red', port: '81' }), recreate)).toThrow(
      /probe-checks/
    )
  })

  it('recreate needs a port; blue-green takes the slot service, the first by default', () => {
    expect(() => parseProbe(text({ checks: 'default' }), recreate)).toThrow(
      /Input 'probe-port' is required with probe-checks and strategy: recreate/
    )
    expect(() => parseProbe(text({ checks: 'default', port: '70000' }), recreate)).toThrow(
      /'probe-port' '70000' is not a port/
    )
    expect(() => parseProbe(text({ checks: 'default', service: 'web' }), recreate)).toThrow(
      /'probe-service' is for 'strategy: blue-green'/
    )
    expect(parseProbe(text({ checks: 'default' }), bg)?.service).toBe('web')
    expect(parseProbe(text({ checks: 'default', service: 'api' }), bg)?.service).toBe('api')
    expect(() => parseProbe(text({ checks: 'default', service: 'db' }), bg)).toThrow(
      /'probe-service' names 'db', which 'blue-green-ports' does not list \(web, api\)/
    )
    expect(() => parseProbe(text({ checks: 'default', port: '80' }), bg)).toThrow(
      /'probe-port' is for 'strategy: recreate'/
    )
    expect(() => parseProbe(text({ checks: 'default' }), { ...recreate, target: 'swarm' })).toThrow(
      /not supported with 'target: swarm'/
    )
  })

  it('a failure line quotes only the failing checks', () => {
    expect(
      probeFailure({
        port: 8001,
        passed: false,
        durationMs: 10,
        checks: ['/health 200', '/readyz 404 FAILED: status 404, want 200']
      })
    ).toBe('the probe of port 8001 failed: /readyz 404 FAILED: status 404, want 200')
  })
})

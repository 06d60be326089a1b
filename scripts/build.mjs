#!/usr/bin/env node
// Builds one ncc bundle per action: tsc compiles src/ to build/ (ESM, NodeNext), then ncc bundles each
// action's main into dist/<action>/index.js (ESM; the post step runs the same file).
// A __dirname/__filename shim goes on top of each bundle: ssh2 and other CommonJS code that ncc wraps
// into an ESM bundle reads them at load time.
import { execFileSync } from 'node:child_process'
import { cpSync, readFileSync, writeFileSync, rmSync, existsSync, readdirSync, renameSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { mkdirSync } from 'node:fs'

export const ACTIONS = ['smoke-test', 'build-push', 'promote', 'deploy-ssh', 'rollback', 'ship']
const root = new URL('..', import.meta.url).pathname
const bin = name => join(root, 'node_modules', '.bin', name)
const only = process.argv.slice(2)

// tsc output goes to build/tsc inside the repository (ncc resolves node_modules and the ESM package type
// from there, and the folder name ends up in the bundle, so it must be fixed). A lock folder keeps two
// builds at once (one per action, say) from clobbering each other.
const buildDir = join(root, 'build', 'tsc')
const lock = join(root, 'build', 'lock')
mkdirSync(join(root, 'build'), { recursive: true })
for (let i = 0; ; i++) {
  try {
    mkdirSync(lock)
    break
  } catch {
    if (i > 600) throw new Error(`build: ${lock} held for 10 minutes; remove it if no build runs`)
    execFileSync('sleep', ['1'])
  }
}
process.on('exit', () => rmSync(lock, { recursive: true, force: true }))
rmSync(buildDir, { recursive: true, force: true })
execFileSync(bin('tsc'), ['-p', 'tsconfig.build.json', '--outDir', buildDir], { cwd: root, stdio: 'inherit' })

// Native addons (ssh2's optional sshcrypto.node, cpu-features) must not be built: ncc would copy the
// .node files into dist and the bundle would differ between machines (and they are built for Node 20's
// ABI, not the runner's Node 24). .npmrc sets ignore-scripts; this check catches a tree built without it.
for (const addon of ['node_modules/ssh2/lib/protocol/crypto/build', 'node_modules/cpu-features/build']) {
  if (existsSync(join(root, addon)) && statSync(join(root, addon)).isDirectory()) {
    console.error(`build: ${addon} exists (a native addon was built); removing it so the bundle is the same on every machine`)
    rmSync(join(root, addon), { recursive: true, force: true })
  }
}

const SHIM =
  "import { fileURLToPath as __shiplineFileURLToPath } from 'node:url';\n" +
  "import { dirname as __shiplineDirname } from 'node:path';\n" +
  'const __filename = __shiplineFileURLToPath(import.meta.url);\n' +
  'const __dirname = __shiplineDirname(__filename);\n'

for (const action of ACTIONS) {
  if (only.length && !only.includes(action)) continue
  const entry = join(buildDir, action, 'index.js')
  if (!existsSync(entry)) throw new Error(`missing entry ${entry}`)
  // ncc writes into build/ first; the files then replace dist/<action>/ one rename at a time, so a bundle
  // that is running (a test, the demo) never sees a half-written or missing file
  const out = join(root, 'build', 'ncc', action)
  const dist = join(root, 'dist', action)
  rmSync(out, { recursive: true, force: true })
  execFileSync(bin('ncc'), ['build', entry, '-o', out, '--license', 'licenses.txt', '--quiet', '--target', 'es2022'], {
    cwd: root,
    stdio: 'inherit'
  })
  // ncc names ESM output index.js; keep only what runs (no sourcemaps, no stray .d.ts)
  for (const f of readdirSync(out)) if (f.endsWith('.map') || f.endsWith('.d.ts')) rmSync(join(out, f), { recursive: true })
  const file = join(out, 'index.js')
  let code = readFileSync(file, 'utf8')
  if (!code.includes('__shiplineFileURLToPath')) code = SHIM + code
  writeFileSync(file, code)
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module' }, null, 2) + '\n')
  mkdirSync(dist, { recursive: true })
  const fresh = new Set(readdirSync(out))
  for (const f of fresh) {
    const tmp = join(dist, `.${f}.tmp`)
    rmSync(tmp, { recursive: true, force: true })
    cpSync(join(out, f), tmp, { recursive: true })
    if (existsSync(join(dist, f)) && statSync(join(dist, f)).isDirectory()) rmSync(join(dist, f), { recursive: true, force: true })
    renameSync(tmp, join(dist, f))
  }
  for (const f of readdirSync(dist)) if (!fresh.has(f)) rmSync(join(dist, f), { recursive: true, force: true })
  rmSync(out, { recursive: true, force: true })
  console.log(`built dist/${action}/index.js`)
}
rmSync(buildDir, { recursive: true, force: true })

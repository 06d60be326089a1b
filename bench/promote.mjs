// promote vs the alternatives, same run, same machine, same local registry:
//
//   node bench/promote.mjs [--runs 5] [--mib 200] [--pull-runs 3]
//
// A real docker-registry (src/testkit/registry.ts, no auth, loopback) holds the busybox sample app with an
// incompressible filler layer of --mib MiB (src/testkit/images.ts), pushed by the real dockerd. Then, each
// timed from start to the target tag answering the digest:
//
// - promote, same repository   (src/lib/registry promote(): resolve, HEAD, manifest PUT, HEAD)
// - promote, cross repository  (a fresh target repository each run: every blob mounted, not copied)
// - docker pull + tag + push    (local copy removed first, as on a fresh runner; pushed to a fresh repository)
// - skopeo copy --all           (docker:// to docker://, a fresh target repository each run)
// - promote of a 2 MB image     (the same sample app without filler: promote's time does not grow with size)
//
// Each promote run builds a new RegistryClient (the /v2/ ping is included). Bytes moved through the client
// are counted inside the client (request + response bodies). The library and test kit are compiled on the
// fly from src/ with esbuild (a devDependency) into build/ (gitignored).
import { execFileSync } from 'node:child_process'
import { loadTs, median, ms, options, time } from './lib.mjs'

const { runs: RUNS, 'pull-runs': PULL_RUNS, mib: MIB } = options({ runs: 5, 'pull-runs': 3, mib: 200 })

const { RegistryClient, promote, startRegistry, buildAppImage, removeImages } = await loadTs('promote', [
  "export { RegistryClient, promote } from './src/lib/registry/index.ts'",
  "export { startRegistry } from './src/testkit/registry.ts'",
  "export { buildAppImage, removeImages } from './src/testkit/images.ts'"
])

const sh = (cmd, argv) =>
  execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 << 20 })

const reg = await startRegistry({ auth: 'none', logLevel: 'info' })
const stamp = Date.now().toString(36)
const big = `${reg.host}/bench/app`
const small = `${reg.host}/bench/small`
const localTags = [`${big}:src`, `${small}:src`]
try {
  console.error(`building and pushing the ${MIB} MiB image …`)
  buildAppImage({ tag: `${big}:src`, version: `bench-${stamp}`, fillerMiB: MIB })
  sh('docker', ['push', `${big}:src`])
  buildAppImage({ tag: `${small}:src`, version: `bench-small-${stamp}` })
  sh('docker', ['push', `${small}:src`])
  removeImages(...localTags)

  const probe = new RegistryClient({ registry: reg.host })
  const src = await probe.resolve('bench/app', 'src')
  const manifest = JSON.parse(src.bytes.toString())
  const imageBytes = manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0)
  console.error(
    `image ${src.digest}: ${manifest.layers.length} layers, ${(imageBytes / 1048576).toFixed(1)} MiB compressed`
  )

  const results = { same: [], cross: [], small: [], pull: [], skopeo: [] }
  const bytes = { same: [], cross: [], small: [] }
  const runPromote = async (key, repository, target, tag) => {
    const client = new RegistryClient({ registry: reg.host })
    let r
    results[key].push(
      await time(async () => {
        r = await promote({
          client,
          registry: reg.host,
          sourceRepository: repository,
          from: 'src',
          targetRepository: target,
          toTags: [tag]
        })
      })
    )
    if (r.digest !== (await probe.headManifest(target, tag))?.digest) throw new Error(`${key}: wrong digest`)
    bytes[key].push(client.stats.bytesIn + client.stats.bytesOut)
  }
  // one warm-up each (connections, registry caches), not counted
  await runPromote('same', 'bench/app', 'bench/app', `warm-${stamp}`)
  results.same.length = 0
  bytes.same.length = 0
  for (let i = 0; i < RUNS; i++) {
    console.error(`run ${i + 1}/${RUNS}`)
    await runPromote('same', 'bench/app', 'bench/app', `same-${stamp}-${i}`)
    await runPromote('cross', 'bench/app', `bench/cross-${stamp}-${i}`, 'prod')
    await runPromote('small', 'bench/small', `bench/small-cross-${stamp}-${i}`, 'prod')
    results.skopeo.push(
      await time(async () =>
        sh('skopeo', [
          'copy',
          '--all',
          '--quiet',
          '--src-tls-verify=false',
          '--dest-tls-verify=false',
          `docker://${big}:src`,
          `docker://${reg.host}/bench/skopeo-${stamp}-${i}:prod`
        ])
      )
    )
  }
  for (let i = 0; i < PULL_RUNS; i++) {
    const dst = `${reg.host}/bench/pulled-${stamp}-${i}:prod`
    removeImages(`${big}:src`, dst)
    console.error(`docker pull+tag+push ${i + 1}/${PULL_RUNS}`)
    results.pull.push(
      await time(async () => {
        sh('docker', ['pull', '-q', `${big}:src`])
        sh('docker', ['tag', `${big}:src`, dst])
        sh('docker', ['push', '-q', dst])
      })
    )
    removeImages(`${big}:src`, dst)
  }

  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  const b = Object.fromEntries(Object.entries(bytes).map(([k, v]) => [k, median(v)]))
  const ratio = (a, c) => `${(a / c).toFixed(1)}×`
  console.log(
    `\nimage: ${(imageBytes / 1048576).toFixed(1)} MiB (${manifest.layers.length} layers), registry docker-registry ${sh('docker-registry', ['--version']).trim().split(' ').pop()} on loopback, ${RUNS} runs (pull+tag+push: ${PULL_RUNS}), medians\n`
  )
  console.log('| what | median | bytes through the client |')
  console.log('|---|---|---|')
  console.log(`| promote, same repository | ${ms(m.same)} | ${b.same} B |`)
  console.log(`| promote, cross repository (mount) | ${ms(m.cross)} | ${b.cross} B |`)
  console.log(`| promote, cross repository, 2 MB image | ${ms(m.small)} | ${b.small} B |`)
  console.log(`| \`docker pull\` + \`tag\` + \`push\` (no local copy) | ${ms(m.pull)} | (whole image) |`)
  console.log(`| \`skopeo copy --all\` to a new repository | ${ms(m.skopeo)} | |`)
  console.log('')
  console.log(`| ratio | value |`)
  console.log('|---|---|')
  console.log(`| pull+tag+push / promote same-repo | ${ratio(m.pull, m.same)} |`)
  console.log(`| pull+tag+push / promote cross-repo | ${ratio(m.pull, m.cross)} |`)
  console.log(`| skopeo copy --all / promote same-repo | ${ratio(m.skopeo, m.same)} |`)
  console.log(`| skopeo copy --all / promote cross-repo | ${ratio(m.skopeo, m.cross)} |`)
  console.log(`| promote cross-repo: ${MIB} MiB image / 2 MB image | ${ratio(m.cross, m.small)} |`)
  console.log(
    `\nall runs (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map(x => Math.round(x))])))}`
  )
} finally {
  removeImages(...localTags)
  await reg.stop()
}

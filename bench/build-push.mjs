// build-push: the cost of the extra tags (stage, …) and of reading every digest back, same run, same
// machine, same local registry:
//
//   node bench/build-push.mjs [--runs 7] [--mib 50] [--tags 3]
//
// A real docker-registry with htpasswd auth (src/testkit/registry.ts, loopback) and the real dockerd. The
// busybox sample app with an incompressible --mib MiB filler layer is built once (classic builder) and its
// SHA tag pushed with `docker push`, as build-push does. Then, per run, --tags extra tags are put on the
// same image, timed from start until the registry answers them:
//
// - `docker push` of each extra tag (what a classic build + push per tag does: the engine HEADs every
//   layer and PUTs the manifest again)
// - build-push's way: one manifest GET of the SHA tag and a manifest PUT of the exact bytes per extra tag
//   (src/lib/build/registry.ts retag, a fresh registry client per run: the /v2/ ping and login included)
// - the read-back build-push does after every push (a manifest GET per tag, digest over the bytes)
//
// Each run uses fresh tag names. The library and test kit are compiled on the fly from src/ with esbuild
// (a devDependency) into build/ (gitignored).
import { execFileSync } from 'node:child_process'
import { loadTs, median, ms, options, time } from './lib.mjs'

const { runs: RUNS, mib: MIB, tags: TAGS } = options({ runs: 7, mib: 50, tags: 3 })

const { registryAccess, normalizeImage, startRegistry, dockerLogin, buildAppImage, removeImages } =
  await loadTs('build-push', [
    "export { registryAccess } from './src/lib/build/registry.ts'",
    "export { normalizeImage } from './src/lib/build/naming.ts'",
    "export { startRegistry, dockerLogin } from './src/testkit/registry.ts'",
    "export { buildAppImage, removeImages } from './src/testkit/images.ts'"
  ])

const reg = await startRegistry({ auth: 'htpasswd', logLevel: 'info' })
const login = dockerLogin(reg)
const docker = argv =>
  execFileSync('docker', ['--config', login.config, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8'
  })
const stamp = Date.now().toString(36)
const image = normalizeImage(`${reg.host}/bench/build-push-${stamp}`)
const sha = 'b'.repeat(40)
const local = [`${image.image}:${sha}`]
const creds = { username: reg.username, password: reg.password }
try {
  console.error(`building and pushing the ${MIB} MiB image …`)
  buildAppImage({ tag: `${image.image}:${sha}`, version: `bench-${stamp}`, fillerMiB: MIB })
  docker(['push', `${image.image}:${sha}`])
  const digest = await registryAccess(image, creds).digest(sha)

  const results = { push: [], retag: [], readBack: [] }
  const check = async (tags, what) => {
    const access = registryAccess(image, creds)
    for (const t of tags)
      if ((await access.digest(t)) !== digest) throw new Error(`${what}: ${t} is not on ${digest}`)
  }
  for (let i = -1; i < RUNS; i++) {
    // run -1 warms up (engine and registry caches), not counted
    if (i >= 0) console.error(`run ${i + 1}/${RUNS}`)
    const pushTags = Array.from({ length: TAGS }, (_, k) => `push-${i + 1}-${k}`)
    const putTags = Array.from({ length: TAGS }, (_, k) => `put-${i + 1}-${k}`)
    for (const t of pushTags) docker(['tag', `${image.image}:${sha}`, `${image.image}:${t}`])
    local.push(...pushTags.map(t => `${image.image}:${t}`))
    const tPush = await time(async () => {
      for (const t of pushTags) docker(['push', `${image.image}:${t}`])
    })
    await check(pushTags, 'docker push')
    const tPut = await time(async () => {
      await registryAccess(image, creds).retag(sha, putTags)
    })
    await check(putTags, 'retag')
    const tRead = await time(async () => {
      const access = registryAccess(image, creds)
      for (const t of [sha, ...putTags]) await access.digest(t)
    })
    if (i >= 0) {
      results.push.push(tPush)
      results.retag.push(tPut)
      results.readBack.push(tRead)
    }
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  console.log(
    `\nimage: ${MIB} MiB filler + busybox (5 layers), ${TAGS} extra tags, docker-registry on loopback with htpasswd, ${RUNS} runs, medians\n`
  )
  console.log('| what | median |')
  console.log('|---|---|')
  console.log(`| ${TAGS} extra tags by \`docker push\` each | ${ms(m.push)} |`)
  console.log(`| ${TAGS} extra tags by manifest PUT (build-push) | ${ms(m.retag)} |`)
  console.log(`| read-back of ${TAGS + 1} tags (manifest GET each) | ${ms(m.readBack)} |`)
  console.log('')
  console.log(`docker push per tag / manifest PUT: ${(m.push / m.retag).toFixed(1)}×`)
} finally {
  removeImages(...local)
  login.remove()
  await reg.stop()
}

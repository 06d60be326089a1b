// promote merge (one OCI index from single-platform images pushed by digest) against the pull-free
// alternative available here, same run, same machine, same local registry:
//
//   node bench/merge.mjs [--runs 7] [--mib 64]
//
// A real docker-registry (src/testkit/registry.ts, no auth, loopback) holds two single-platform images
// (linux/amd64, linux/arm64), each a config and two incompressible layers of --mib MiB, pushed by digest
// through the registry API (as build-push `push-by-digest` leaves them; no base image can be pulled here).
// Then, each run timed from start until the index answers under its new tag:
//
// - merge, same repository      (src/lib/registry merge(): read both manifests and configs, PUT the index
//                                 under a new tag; a new RegistryClient each run, the /v2/ ping included)
// - merge, cross repository     (the images in bench/amd64 and bench/arm64, a fresh target repository each
//                                 run: every blob mounted, children PUT by digest)
// - `docker manifest create` + `docker manifest push --purge` (docker CLI, classic; --insecure; a fresh
//   DOCKER_CONFIG) for the same two cases
//
// Not measured, and why (printed too): `docker buildx imagetools create` (buildx is not installed and
// cannot be here); `skopeo` (it copies images and indexes, but cannot make an index of several manifests);
// `crane index append` / `regctl index create` (not installed). Blob bytes written are counted inside the
// client for merge, and read from the registry's access log (upload requests) for docker.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTs, median, ms, options, time } from './lib.mjs'

const { runs: RUNS, mib: MIB } = options({ runs: 7, mib: 64 })

const { RegistryClient, merge, sha256, OCI_MANIFEST, startRegistry } = await loadTs('merge', [
  "export { RegistryClient, merge, sha256, OCI_MANIFEST } from './src/lib/registry/index.ts'",
  "export { startRegistry } from './src/testkit/registry.ts'"
])

const reg = await startRegistry({ auth: 'none', logLevel: 'info' })
const dockerConfig = mkdtempSync(join(tmpdir(), 'shipline-bench-docker-'))
const docker = argv =>
  execFileSync('docker', ['--config', dockerConfig, ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8'
  })
const stamp = Date.now().toString(36)

/** One single-platform OCI image pushed by digest (config + two random layers of MIB MiB). */
async function pushPlatformImage(client, repository, arch) {
  const config = Buffer.from(
    JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, stamp })
  )
  await client.uploadBlob(repository, sha256(config), config)
  const layers = []
  for (let i = 0; i < 2; i++) {
    const data = randomBytes(MIB << 20)
    await client.uploadBlob(repository, sha256(data), data)
    layers.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: sha256(data),
      size: data.length
    })
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length
      },
      layers
    })
  )
  return client.putManifest(repository, sha256(manifest), manifest, OCI_MANIFEST)
}

/** Upload requests (blob bytes written, not mounts) the registry logged since `mark`. */
const uploadsSince = mark =>
  reg
    .requests()
    .slice(mark)
    .filter(q => q.path.includes('/blobs/uploads/') && !(q.method === 'POST' && q.status === 201)).length

try {
  const setup = new RegistryClient({ registry: reg.host })
  console.error(`pushing two single-platform images of ${2 * MIB} MiB each, by digest …`)
  const same = {
    amd64: await pushPlatformImage(setup, 'bench/app', 'amd64'),
    arm64: await pushPlatformImage(setup, 'bench/app', 'arm64')
  }
  const cross = {
    amd64: await pushPlatformImage(setup, 'bench/amd64', 'amd64'),
    arm64: await pushPlatformImage(setup, 'bench/arm64', 'arm64')
  }
  const children = {
    same: [
      { repository: 'bench/app', digest: same.amd64 },
      { repository: 'bench/app', digest: same.arm64 }
    ],
    cross: [
      { repository: 'bench/amd64', digest: cross.amd64 },
      { repository: 'bench/arm64', digest: cross.arm64 }
    ]
  }

  const results = { mergeSame: [], mergeCross: [], dockerSame: [], dockerCross: [] }
  const bytes = { mergeSame: [], mergeCross: [] }
  const uploads = { dockerSame: [], dockerCross: [] }
  const media = {}
  const runMerge = async (key, kids, target, tag) => {
    const client = new RegistryClient({ registry: reg.host })
    let r
    const t = await time(async () => {
      r = await merge({ client, registry: reg.host, children: kids, targetRepository: target, tags: [tag] })
    })
    if ((await setup.headManifest(target, tag))?.digest !== r.digest) throw new Error(`${key}: wrong digest`)
    results[key].push(t)
    bytes[key].push(r.blobBytesUploaded)
    media[key] = r.mediaType
  }
  const runDocker = async (key, kids, target, tag) => {
    const list = `${reg.host}/${target}:${tag}`
    const mark = reg.requests().length
    const t = await time(async () => {
      docker([
        'manifest',
        'create',
        '--insecure',
        list,
        ...kids.map(k => `${reg.host}/${k.repository}@${k.digest}`)
      ])
      docker(['manifest', 'push', '--insecure', '--purge', list])
    })
    const head = await setup.headManifest(target, tag)
    if (!head) throw new Error(`${key}: ${list} is missing after docker manifest push`)
    results[key].push(t)
    uploads[key].push(uploadsSince(mark))
    media[key] = head.mediaType
  }

  // one warm-up each (connections, registry caches, docker CLI start), not counted
  await runMerge('mergeSame', children.same, 'bench/app', `warm-${stamp}`)
  await runDocker('dockerSame', children.same, 'bench/app', `warm-docker-${stamp}`)
  for (const k of Object.keys(results)) results[k].length = 0
  for (const k of Object.keys(bytes)) bytes[k].length = 0
  for (const k of Object.keys(uploads)) uploads[k].length = 0
  for (let i = 0; i < RUNS; i++) {
    console.error(`run ${i + 1}/${RUNS}`)
    await runMerge('mergeSame', children.same, 'bench/app', `merge-${stamp}-${i}`)
    await runDocker('dockerSame', children.same, 'bench/app', `docker-${stamp}-${i}`)
    await runMerge('mergeCross', children.cross, `bench/merge-${stamp}-${i}`, 'prod')
    await runDocker('dockerCross', children.cross, `bench/docker-${stamp}-${i}`, 'prod')
  }

  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
  const ratio = (a, c) => `${(a / c).toFixed(1)}×`
  const dockerCli = docker(['version', '--format', '{{.Client.Version}}']).trim()
  console.log(
    `\ntwo single-platform images of ${2 * MIB} MiB each (2 layers + config), docker-registry ${execFileSync('docker-registry', ['--version'], { encoding: 'utf8' }).trim().split(' ').pop()} on loopback, docker CLI ${dockerCli}, ${RUNS} runs, medians\n`
  )
  console.log('| what | median | index media type | blob bytes written |')
  console.log('|---|---|---|---|')
  console.log(
    `| promote merge, same repository | ${ms(m.mergeSame)} | ${media.mergeSame} | ${median(bytes.mergeSame)} B |`
  )
  console.log(
    `| promote merge, children in two other repositories (mounted) | ${ms(m.mergeCross)} | ${media.mergeCross} | ${median(bytes.mergeCross)} B |`
  )
  console.log(
    `| \`docker manifest create\` + \`push\`, same repository | ${ms(m.dockerSame)} | ${media.dockerSame} | ${median(uploads.dockerSame)} upload requests |`
  )
  console.log(
    `| \`docker manifest create\` + \`push\`, children in two other repositories | ${ms(m.dockerCross)} | ${media.dockerCross} | ${median(uploads.dockerCross)} upload requests |`
  )
  console.log('')
  console.log('| ratio | value |')
  console.log('|---|---|')
  console.log(`| docker manifest / promote merge, same repository | ${ratio(m.dockerSame, m.mergeSame)} |`)
  console.log(`| docker manifest / promote merge, cross repository | ${ratio(m.dockerCross, m.mergeCross)} |`)
  console.log('')
  console.log(
    'not measured: `docker buildx imagetools create` (buildx is not installed here); `skopeo` cannot merge'
  )
  console.log(
    'manifests into an index (it copies existing images and indexes only); crane and regctl are not installed.'
  )
  console.log(
    `\nall runs (ms): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map(x => Math.round(x))])))}`
  )
} finally {
  rmSync(dockerConfig, { recursive: true, force: true })
  await reg.stop()
}

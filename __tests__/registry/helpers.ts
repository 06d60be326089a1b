/**
 * Test images: made directly through the registry API (no Docker: random layers, a config, a manifest or an
 * index), or built and pushed by the real dockerd.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { RegistryClient } from '../../src/lib/registry/client.js'
import { OCI_INDEX, OCI_MANIFEST, sha256 } from '../../src/lib/registry/media.js'
import { buildAppImage } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { dockerLogin, type TestRegistry } from '../../src/testkit/registry.js'

export interface PushedImage {
  digest: string
  bytes: Buffer
  mediaType: string
  blobs: string[]
}

/** Pushes a small OCI image (config + `layers` random layers) and tags it (tag '': pushed by digest only). */
export async function pushImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  {
    layers = 2,
    layerBytes = 4096,
    arch = 'amd64',
    os = 'linux',
    variant
  }: { layers?: number; layerBytes?: number; arch?: string; os?: string; variant?: string } = {}
): Promise<PushedImage> {
  const config = Buffer.from(
    JSON.stringify({
      architecture: arch,
      os,
      ...(variant ? { variant } : {}),
      rootfs: { type: 'layers', diff_ids: [] },
      nonce: randomBytes(8).toString('hex')
    })
  )
  const configDigest = sha256(config)
  await client.uploadBlob(repository, configDigest, config)
  const layerDescs = []
  for (let i = 0; i < layers; i++) {
    const data = randomBytes(layerBytes)
    const d = sha256(data)
    await client.uploadBlob(repository, d, data)
    layerDescs.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: d,
      size: data.length
    })
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: configDigest,
      size: config.length
    },
    layers: layerDescs
  }
  // two-space indentation: the bytes are not what JSON.stringify would make, so a re-serialising client would change the digest
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n')
  const digest = await client.putManifest(repository, tag || sha256(bytes), bytes, OCI_MANIFEST)
  return { digest, bytes, mediaType: OCI_MANIFEST, blobs: [configDigest, ...layerDescs.map(l => l.digest)] }
}

/** Pushes a two-platform OCI index (linux/amd64 + linux/arm64) whose children are pushed by digest. */
export async function pushIndex(
  client: RegistryClient,
  repository: string,
  tag: string
): Promise<PushedImage & { children: PushedImage[] }> {
  const children: PushedImage[] = []
  for (const arch of ['amd64', 'arm64']) {
    const child = await pushImage(client, repository, `tmp-${arch}-${randomBytes(4).toString('hex')}`, {
      arch,
      layers: 1
    })
    children.push(child)
  }
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c, i) => ({
      mediaType: c.mediaType,
      digest: c.digest,
      size: c.bytes.length,
      platform: { os: 'linux', architecture: i === 0 ? 'amd64' : 'arm64' }
    }))
  }
  const bytes = Buffer.from(JSON.stringify(index, null, 3))
  const digest = await client.putManifest(repository, tag, bytes, OCI_INDEX)
  return { digest, bytes, mediaType: OCI_INDEX, blobs: children.flatMap(c => c.blobs), children }
}

/** Runs a docker command logged in to the test registry (a temporary DOCKER_CONFIG, removed after). */
export function dockerWithLogin(
  reg: Pick<TestRegistry, 'host' | 'username' | 'password'>,
  args: string[]
): void {
  const login = dockerLogin(reg)
  try {
    execFileSync('docker', ['--config', login.config, ...args], { stdio: 'pipe' })
  } finally {
    login.remove()
  }
}

/** The digest dockerd recorded for `ref` after a push or pull (RepoDigests), e.g. sha256:… */
export function dockerRepoDigest(ref: string): string {
  const repo = ref.replace(/:[^:/]+$/, '')
  const all = JSON.parse(
    execFileSync('docker', ['image', 'inspect', '--format', '{{json .RepoDigests}}', ref], {
      encoding: 'utf8'
    })
  ) as string[]
  const hit = all.find(d => d.startsWith(`${repo}@`))
  if (!hit) throw new Error(`no repo digest for ${ref} in ${all.join(', ')}`)
  return hit.split('@')[1]
}

/** Builds the sample app with the real dockerd and pushes it as `<registry>/<repository>:<tag>`; returns the ref. */
export function dockerPushApp(
  reg: Pick<TestRegistry, 'host' | 'username' | 'password'>,
  repository: string,
  tag: string
): string {
  const ref = `${reg.host}/${repository}:${tag}`
  buildAppImage({ tag: ref, version: uniqueName('v') })
  dockerWithLogin(reg, ['push', ref])
  return ref
}

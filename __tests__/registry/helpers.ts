/** Images made directly through the registry API (no Docker): random layers, a config, a manifest or an index. */
import { randomBytes } from 'node:crypto'
import type { RegistryClient } from '../../src/lib/registry/client.js'
import { OCI_INDEX, OCI_MANIFEST, sha256 } from '../../src/lib/registry/media.js'

export interface PushedImage {
  digest: string
  bytes: Buffer
  mediaType: string
  blobs: string[]
}

/** Pushes a small OCI image (config + `layers` random layers) and tags it. */
export async function pushImage(
  client: RegistryClient,
  repository: string,
  tag: string,
  { layers = 2, layerBytes = 4096, arch = 'amd64' }: { layers?: number; layerBytes?: number; arch?: string } = {}
): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }))
  const configDigest = sha256(config)
  await client.uploadBlob(repository, configDigest, config)
  const layerDescs = []
  for (let i = 0; i < layers; i++) {
    const data = randomBytes(layerBytes)
    const d = sha256(data)
    await client.uploadBlob(repository, d, data)
    layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d, size: data.length })
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layerDescs
  }
  // two-space indentation: the bytes are not what JSON.stringify would make, so a re-serialising client would change the digest
  const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n')
  const digest = await client.putManifest(repository, tag, bytes, OCI_MANIFEST)
  return { digest, bytes, mediaType: OCI_MANIFEST, blobs: [configDigest, ...layerDescs.map(l => l.digest)] }
}

/** Pushes a two-platform OCI index (linux/amd64 + linux/arm64) whose children are pushed by digest. */
export async function pushIndex(client: RegistryClient, repository: string, tag: string): Promise<PushedImage & { children: PushedImage[] }> {
  const children: PushedImage[] = []
  for (const arch of ['amd64', 'arm64']) {
    const child = await pushImage(client, repository, `tmp-${arch}-${randomBytes(4).toString('hex')}`, { arch, layers: 1 })
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

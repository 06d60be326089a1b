/**
 * merge: one OCI image index made registry-side from single-platform images pushed by digest (build-push
 * `push-by-digest` on native runners). Each child's manifest is read by digest and must be an image
 * manifest; its platform comes from its config blob; children in other repositories of the registry are
 * completed in the target (blobs mounted, manifest PUT by digest, the same bytes); the index is PUT under
 * the target tags the way promote does it (SHA tags immutable, every tag read back). Nothing is pulled,
 * no blob is uploaded; children's referrers come along.
 */
import { UserError } from '../errors.js'
import type { Manifest, RegistryClient } from './client.js'
import { Copier, mapLimit, platformWord } from './copy.js'
import { DOCKER_MANIFEST, isIndex, OCI_INDEX, OCI_MANIFEST, sha256, type Descriptor } from './media.js'
import type { PromoteResult } from './promote.js'
import { checkTargetTags } from './promote.js'
import { isDigest } from './reference.js'
import { copyReferrers } from './referrers.js'
import { pendingTags, putTags, readTags, verifyTags } from './tags.js'

export interface MergeChild {
  /** the repository the image was pushed to (same registry as the target) */
  repository: string
  digest: string
}

export interface MergeOptions {
  client: RegistryClient
  /** the registry host as users write it (for references in outputs) */
  registry: string
  /** the single-platform images, in any order (the index lists them sorted by platform) */
  children: MergeChild[]
  targetRepository: string
  /** tags the index gets (the commit SHA tag among them) */
  tags: string[]
  /** the input the tags came from, named in errors (default 'to-tags') */
  tagsInput?: string
  log?: (line: string) => void
  concurrency?: number
}

export interface MergedChild {
  /** `registry/repository@digest` as given */
  ref: string
  digest: string
  mediaType: string
  size: number
  /** os/architecture[/variant] */
  platform: string
}

export interface MergeResult extends PromoteResult {
  children: MergedChild[]
  /** the index's exact bytes */
  bytes: Buffer
}

type Platform = NonNullable<Descriptor['platform']>

const refOf = (registry: string, c: MergeChild): string => `${registry}/${c.repository}@${c.digest}`

/** The checks on `merge` that need no registry: at least two entries, digests, no digest twice, the tags. */
export function checkMergeInputs(children: MergeChild[], tags: string[], tagsInput = 'to-tags'): void {
  if (children.length < 2) {
    throw new UserError(
      `Input 'merge' needs at least two image digests (one per platform), got ${children.length}; to give one image tags, use 'from' instead.`
    )
  }
  const seen = new Map<string, string>()
  for (const c of children) {
    if (!isDigest(c.digest))
      throw new UserError(
        `merge: '${c.digest}' is not a valid digest; write sha256: followed by 64 lowercase hex characters.`
      )
    const other = seen.get(c.digest)
    if (other !== undefined)
      throw new UserError(
        `Input 'merge' names ${c.digest} twice (${other} and ${c.repository}): list each platform's image once.`
      )
    seen.set(c.digest, c.repository)
  }
  checkTargetTags(tags, tagsInput)
}

/** The platform of a child image, from its config blob; refused when the config has none. */
async function platformFromConfig(
  client: RegistryClient,
  registry: string,
  c: MergeChild,
  m: Manifest
): Promise<Platform> {
  const config = (JSON.parse(m.bytes.toString('utf8')) as { config?: Descriptor }).config
  if (!config)
    throw new UserError(
      `merge: ${refOf(registry, c)} has no config, so no platform; give the digest of an image built for one platform.`
    )
  let json: Record<string, unknown>
  try {
    json = JSON.parse(
      (await client.getBlob(c.repository, config.digest, 1024 * 1024)).toString('utf8')
    ) as Record<string, unknown>
  } catch (e) {
    if (e instanceof SyntaxError)
      throw new UserError(
        `merge: the config of ${refOf(registry, c)} is not JSON, so it names no platform; give the digest of a container image.`
      )
    throw e
  }
  const word = (k: string): string | undefined => {
    const w = platformWord(json?.[k])
    if (w === 'invalid')
      throw new UserError(
        `merge: the config of ${refOf(registry, c)} has an invalid ${k}; rebuild the image for a real platform.`
      )
    return w
  }
  const os = word('os')
  const architecture = word('architecture')
  if (!os || !architecture) {
    throw new UserError(
      `merge: ${refOf(registry, c)} has no platform (os and architecture) in its config; give the digest of a container image built for one platform (build-push 'push-by-digest').`
    )
  }
  const variant = word('variant')
  const osVersion = platformWord(json['os.version'])
  return {
    architecture,
    os,
    ...(osVersion && osVersion !== 'invalid' ? { 'os.version': osVersion } : {}),
    ...(variant ? { variant } : {})
  }
}

const platformName = (p: Platform): string =>
  [p.os, p.architecture, p.variant].filter(Boolean).join('/') +
  (p['os.version'] ? ` (${p['os.version']})` : '')

/** Reads one child: by digest, an image manifest, its platform. */
async function readChild(
  client: RegistryClient,
  registry: string,
  c: MergeChild
): Promise<{ child: MergeChild; manifest: Manifest; platform: Platform }> {
  const manifest = await client.getManifest(c.repository, c.digest)
  if (isIndex(manifest.mediaType)) {
    throw new UserError(
      `merge: ${refOf(registry, c)} is an image index (${manifest.mediaType}), not a single-platform image; give each platform's image digest (build-push 'push-by-digest: true' on one platform), not an index.`
    )
  }
  if (manifest.mediaType !== OCI_MANIFEST && manifest.mediaType !== DOCKER_MANIFEST) {
    throw new UserError(
      `merge: ${refOf(registry, c)} is a ${manifest.mediaType || 'manifest of no known type'}, not an image manifest; give the digest of a container image.`
    )
  }
  const artifact = (JSON.parse(manifest.bytes.toString('utf8')) as { artifactType?: unknown }).artifactType
  if (artifact !== undefined)
    throw new UserError(
      `merge: ${refOf(registry, c)} is an artifact (${String(platformWord(artifact) ?? '')}), not an image; give image digests only.`
    )
  return { child: c, manifest, platform: await platformFromConfig(client, registry, c, manifest) }
}

export async function merge(o: MergeOptions): Promise<MergeResult> {
  const log = o.log ?? (() => {})
  const { client, registry } = o
  const tags = [...new Set(o.tags)]
  checkMergeInputs(o.children, tags, o.tagsInput)
  for (const c of o.children) client.authorize(c.repository, ['pull'])
  client.authorize(o.targetRepository, ['pull', 'push'])
  const uploadedBefore = client.stats.blobBytesUploaded

  // 1. every child, and where the tags point now
  const [got, heads] = await Promise.allSettled([
    mapLimit(o.children, o.concurrency ?? 6, c => readChild(client, registry, c)),
    readTags(client, o.targetRepository, tags)
  ])
  if (got.status === 'rejected') throw got.reason
  if (heads.status === 'rejected') throw heads.reason
  const before = heads.value
  const children = got.value
    .map(r => ({ ...r, name: platformName(r.platform) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (let i = 1; i < children.length; i++) {
    if (children[i].name === children[i - 1].name) {
      throw new UserError(
        `Input 'merge': ${refOf(registry, children[i - 1].child)} and ${refOf(registry, children[i].child)} are both ${children[i].name}; an index holds one image per platform: build each platform once (one matrix job per platform) and list each digest once.`
      )
    }
  }
  for (const c of children)
    log(`${refOf(registry, c.child)}: ${c.name} (${c.manifest.mediaType}, ${c.manifest.size} bytes)`)

  // 2. the index: children sorted by platform, no timestamps, so the same images always give the same digest
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map(c => ({
      mediaType: c.manifest.mediaType,
      digest: c.manifest.digest,
      size: c.manifest.size,
      platform: c.platform
    }))
  }
  const bytes = Buffer.from(JSON.stringify(index, null, 2) + '\n')
  const digest = sha256(bytes)
  const indexManifest: Manifest = { digest, mediaType: OCI_INDEX, size: bytes.length, bytes }
  log(`index ${digest}: ${children.map(c => c.name).join(', ')}`)
  const pending = pendingTags(registry, o.targetRepository, tags, before, digest)

  // 3. children into the target repository (same bytes, by digest; blobs mounted), then the tags
  const copier = new Copier(client, o.targetRepository, o.concurrency ?? 6, log)
  if (pending.length > 0) {
    await mapLimit(children, o.concurrency ?? 6, c => copier.put(c.child.repository, c.manifest, c.name))
    await putTags(client, registry, o.targetRepository, pending, indexManifest, log)
  }
  const targets = await verifyTags(client, registry, o.targetRepository, tags, before, digest)

  // 4. referrers (attestations) come along from the repositories the children were pushed to: each child's,
  // and the index's (when the same index was made and attested there before)
  let referrersCopied = 0
  for (const repository of new Set(children.map(c => c.child.repository))) {
    const subjects = children.filter(c => c.child.repository === repository).map(c => c.manifest.digest)
    referrersCopied += await copyReferrers(
      client,
      copier,
      repository,
      o.targetRepository,
      [...subjects, digest],
      log
    )
  }

  return {
    digest,
    mediaType: OCI_INDEX,
    sourceRef: `${registry}/${o.targetRepository}@${digest}`,
    targets,
    previousDigest: before[0] ?? '',
    changed: pending.length > 0,
    platforms: children.map(c => c.name),
    blobsMounted: copier.blobsMounted,
    blobsUploaded: copier.blobsUploaded,
    manifestsCopied: copier.manifestsCopied,
    signatures: [],
    referrersCopied,
    blobBytesUploaded: client.stats.blobBytesUploaded - uploadedBefore,
    children: children.map(c => ({
      ref: refOf(registry, c.child),
      digest: c.manifest.digest,
      mediaType: c.manifest.mediaType,
      size: c.manifest.size,
      platform: c.name
    })),
    bytes
  }
}

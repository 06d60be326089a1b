/**
 * promote: registry-side retag, byte for byte. `from` is resolved to a digest once; every target tag is
 * PUT with the exact manifest bytes and media type; then each target is HEADed and must answer that digest.
 * Across repositories, blobs are mounted (not copied) and an index's child manifests are put (by digest)
 * before the index. Commit-SHA tags are immutable; cosign `.sig`/`.att`/`.sbom` tags come along.
 */
import { UserError } from '../errors.js'
import type { RegistryClient } from './client.js'
import { Copier, mapLimit, platformOf } from './copy.js'
import { childManifests, isIndex } from './media.js'
import { checkTag, isDigest } from './reference.js'
import { copyReferrers } from './referrers.js'
import { pendingTags, putTags, readTags, verifyTags, type TargetResult } from './tags.js'

export type { TargetResult } from './tags.js'

export interface PromoteOptions {
  client: RegistryClient
  /** the registry host as users write it (for references in outputs) */
  registry: string
  sourceRepository: string
  /** tag, full SHA tag, or sha256: digest */
  from: string
  targetRepository: string
  toTags: string[]
  log?: (line: string) => void
  /** parallel blob mounts / child copies (default 6) */
  concurrency?: number
}

export interface PromoteResult {
  digest: string
  mediaType: string
  sourceRef: string
  targets: TargetResult[]
  previousDigest: string
  changed: boolean
  /** os/arch[/variant] of an index's children; empty for a single manifest */
  platforms: string[]
  blobsMounted: number
  blobsUploaded: number
  manifestsCopied: number
  /** cosign tags carried to the target repository */
  signatures: string[]
  /** OCI referrers (attestations, SBOMs) of the digest (and of an index's children) written to the target */
  referrersCopied: number
  /** blob bytes written into the registry (0 when every blob was mounted or already there) */
  blobBytesUploaded: number
}

const COSIGN_SUFFIXES = ['sig', 'att', 'sbom']

/** Validates the target tags (`input` names them in errors). */
export function checkTargetTags(tags: string[], input = 'to-tags'): void {
  if (tags.length === 0)
    throw new UserError(`Input '${input}' is empty: give at least one tag to set, e.g. '${input}: prod'.`)
  for (const t of tags) checkTag(t, input)
}

/** Validates to-tags and from before anything talks to the registry. */
function checkPromoteInputs(from: string, toTags: string[]): void {
  if (!from)
    throw new UserError(
      "Input 'from' is empty: give the source tag, the full commit SHA tag, or a sha256: digest."
    )
  if (!isDigest(from)) {
    if (from.startsWith('sha256:')) {
      throw new UserError(
        `from: '${from}' is not a valid digest; write sha256: followed by 64 lowercase hex characters.`
      )
    }
    checkTag(from, 'from')
  }
  checkTargetTags(toTags)
}

export async function promote(o: PromoteOptions): Promise<PromoteResult> {
  const log = o.log ?? (() => {})
  const { client } = o
  const toTags = [...new Set(o.toTags)]
  checkPromoteInputs(o.from, toTags)
  const cross = o.sourceRepository !== o.targetRepository
  client.authorize(o.sourceRepository, ['pull'])
  client.authorize(o.targetRepository, ['pull', 'push'])

  // 1. resolve `from` once and, at the same time, read where the targets point now
  // (both settle before a failure is reported: no request of this promote outlives it)
  const [got, heads] = await Promise.allSettled([
    client.getManifest(o.sourceRepository, o.from),
    readTags(client, o.targetRepository, toTags)
  ])
  if (got.status === 'rejected') throw got.reason
  if (heads.status === 'rejected') throw heads.reason
  const [source, before] = [got.value, heads.value]
  const digest = source.digest
  const sourceRef = `${o.registry}/${o.sourceRepository}@${digest}`
  log(
    `${o.registry}/${o.sourceRepository}:${o.from} is ${digest} (${source.mediaType}, ${source.size} bytes)`
  )
  const platforms = isIndex(source.mediaType) ? childManifests(source.bytes).map(platformOf) : []

  // 2. SHA tags never move
  const pending = pendingTags(o.registry, o.targetRepository, toTags, before, digest)

  // across repositories: which cosign tags of the digest the source has (read while the blobs are mounted)
  const cosignTags = cross ? COSIGN_SUFFIXES.map(suffix => `${digest.replace(':', '-')}.${suffix}`) : []
  const cosignLookup = mapLimit(cosignTags, 3, tag => client.headManifest(o.sourceRepository, tag))
  cosignLookup.catch(() => undefined) // awaited below; keeps an early failure from being an unhandled rejection

  // 3. content first (cross-repository), then the tags
  const copier = new Copier(client, o.targetRepository, o.concurrency ?? 6, log)
  const uploadedBefore = client.stats.blobBytesUploaded
  if (pending.length > 0) {
    if (cross) await copier.contents(o.sourceRepository, source)
    await putTags(client, o.registry, o.targetRepository, pending, source, log)
  }

  // 4. verify every target answers the digest
  const targets = await verifyTags(client, o.registry, o.targetRepository, toTags, before, digest)

  // 5. cosign signatures / attestations / SBOMs attached to the digest
  const signatures: string[] = []
  const cosignSource = await cosignLookup
  for (const [i, tag] of cosignTags.entries()) {
    const src = cosignSource[i]
    if (!src) continue
    const dst = await client.headManifest(o.targetRepository, tag)
    if (dst?.digest !== src.digest) {
      const m = await client.getManifest(o.sourceRepository, tag)
      await copier.contents(o.sourceRepository, m)
      await client.putManifest(o.targetRepository, tag, m.bytes, m.mediaType)
      log(`carried ${tag} to ${o.targetRepository}`)
    }
    signatures.push(tag)
  }

  // 6. OCI referrers of the digest and of an index's children
  const subjects = [
    digest,
    ...(isIndex(source.mediaType) ? childManifests(source.bytes).map(c => c.digest) : [])
  ]
  const referrersCopied = cross
    ? await copyReferrers(client, copier, o.sourceRepository, o.targetRepository, subjects, log)
    : 0

  return {
    digest,
    mediaType: source.mediaType,
    sourceRef,
    targets,
    previousDigest: before[0] ?? '',
    changed: pending.length > 0,
    platforms,
    blobsMounted: copier.blobsMounted,
    blobsUploaded: copier.blobsUploaded,
    manifestsCopied: copier.manifestsCopied,
    signatures,
    referrersCopied,
    blobBytesUploaded: client.stats.blobBytesUploaded - uploadedBefore
  }
}

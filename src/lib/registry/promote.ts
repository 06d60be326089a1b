/**
 * promote: registry-side retag, byte for byte. `from` is resolved to a digest once; every target tag is
 * PUT with the exact manifest bytes and media type; then each target is HEADed and must answer that digest.
 * Across repositories, blobs are mounted (not copied) and an index's child manifests are put (by digest)
 * before the index. Commit-SHA tags are immutable; cosign `.sig`/`.att`/`.sbom` tags come along.
 */
import { UserError } from '../errors.js'
import type { RegistryClient, Manifest } from './client.js'
import { childManifests, isIndex, manifestBlobs, type Descriptor } from './media.js'
import { checkTag, isDigest, isShaTag } from './reference.js'

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

export interface TargetResult {
  tag: string
  ref: string
  before: string | null
  after: string
  action: 'created' | 'moved' | 'unchanged'
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
}

const COSIGN_SUFFIXES = ['sig', 'att', 'sbom']

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i])
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

/** One platform word from the remote index, made safe for log lines and outputs (no control characters, no '::'). */
function platformWord(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string' || !/^[A-Za-z0-9._+-]{1,64}$/.test(v)) return 'invalid'
  return v
}

function platformOf(d: Descriptor): string {
  const p = d.platform
  if (!p || typeof p !== 'object') return 'unknown'
  return [platformWord(p.os) ?? 'unknown', platformWord(p.architecture) ?? 'unknown', platformWord(p.variant)]
    .filter(Boolean)
    .join('/')
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
  if (toTags.length === 0)
    throw new UserError("Input 'to-tags' is empty: give at least one tag to set, e.g. 'to-tags: prod'.")
  for (const t of toTags) checkTag(t, 'to-tags')
}

class Copier {
  blobsMounted = 0
  blobsUploaded = 0
  manifestsCopied = 0
  constructor(
    private readonly client: RegistryClient,
    private readonly from: string,
    private readonly to: string,
    private readonly limit: number,
    private readonly log: (line: string) => void
  ) {}

  /** Makes everything `m` references exist in the target repository (children by digest; not m itself). */
  async contents(m: Manifest): Promise<void> {
    if (isIndex(m.mediaType)) {
      await mapLimit(childManifests(m.bytes), this.limit, child => this.manifestByDigest(child))
      return
    }
    await mapLimit(manifestBlobs(m.bytes), this.limit, async blob => {
      const how = await this.client.copyBlob(this.from, this.to, blob.digest, blob.size)
      if (how === 'uploaded') this.blobsUploaded++
      else this.blobsMounted++
      this.log(`blob ${blob.digest} (${blob.size} bytes): ${how}`)
    })
  }

  private async manifestByDigest(d: Descriptor): Promise<void> {
    const there = await this.client.headManifest(this.to, d.digest)
    if (there && there.digest === d.digest) return
    const child = await this.client.getManifest(this.from, d.digest)
    await this.contents(child)
    await this.client.putManifest(this.to, d.digest, child.bytes, child.mediaType)
    this.manifestsCopied++
    this.log(`manifest ${d.digest} (${platformOf(d)}) put in ${this.to}`)
  }
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
    mapLimit(toTags, 4, async tag => (await client.headManifest(o.targetRepository, tag))?.digest ?? null)
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
  for (const [i, tag] of toTags.entries()) {
    if (isShaTag(tag) && before[i] && before[i] !== digest) {
      throw new UserError(
        `${o.registry}/${o.targetRepository}:${tag} is a commit SHA tag and already points at ${before[i]}; SHA tags are immutable, so it is not moved to ${digest}: promote to a moving tag (e.g. prod) instead.`
      )
    }
  }
  const pending = toTags.filter((_, i) => before[i] !== digest)

  // across repositories: which cosign tags of the digest the source has (read while the blobs are mounted)
  const cosignTags = cross ? COSIGN_SUFFIXES.map(suffix => `${digest.replace(':', '-')}.${suffix}`) : []
  const cosignLookup = mapLimit(cosignTags, 3, tag => client.headManifest(o.sourceRepository, tag))
  cosignLookup.catch(() => undefined) // awaited below; keeps an early failure from being an unhandled rejection

  // 3. content first (cross-repository), then the tags
  const copier = new Copier(client, o.sourceRepository, o.targetRepository, o.concurrency ?? 6, log)
  if (pending.length > 0) {
    if (cross) await copier.contents(source)
    for (const tag of pending) {
      await client.putManifest(o.targetRepository, tag, source.bytes, source.mediaType)
      log(`${o.registry}/${o.targetRepository}:${tag} → ${digest}`)
    }
  }

  // 4. verify every target answers the digest
  const after = await mapLimit(
    toTags,
    4,
    async tag => (await client.headManifest(o.targetRepository, tag))?.digest ?? null
  )
  const wrong = toTags.map((tag, i) => ({ tag, got: after[i] })).filter(t => t.got !== digest)
  if (wrong.length > 0) {
    const list = wrong.map(w => `${w.tag} → ${w.got ?? 'missing'}`).join(', ')
    throw new UserError(
      `after promoting, ${o.registry}/${o.targetRepository} does not answer ${digest} for ${list}; another job may be moving the same tags: run promote again.`
    )
  }

  // 5. cosign signatures / attestations / SBOMs attached to the digest
  const signatures: string[] = []
  const cosignSource = await cosignLookup
  for (const [i, tag] of cosignTags.entries()) {
    const src = cosignSource[i]
    if (!src) continue
    const dst = await client.headManifest(o.targetRepository, tag)
    if (dst?.digest !== src.digest) {
      const m = await client.getManifest(o.sourceRepository, tag)
      await copier.contents(m)
      await client.putManifest(o.targetRepository, tag, m.bytes, m.mediaType)
      log(`carried ${tag} to ${o.targetRepository}`)
    }
    signatures.push(tag)
  }

  const targets: TargetResult[] = toTags.map((tag, i) => ({
    tag,
    ref: `${o.registry}/${o.targetRepository}:${tag}`,
    before: before[i],
    after: digest,
    action: before[i] === digest ? 'unchanged' : before[i] ? 'moved' : 'created'
  }))
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
    signatures
  }
}

/**
 * Content into a target repository, registry-side: blobs mounted from the repository they live in (a
 * streamed copy only when the registry refuses the mount), child manifests put by digest before their
 * index. Shared by promote, merge and the referrers copy; counts what it did.
 */
import type { Manifest, RegistryClient } from './client.js'
import { childManifests, isIndex, manifestBlobs, type Descriptor } from './media.js'

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
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

/** One platform word from a remote index or config, made safe for log lines and outputs (no control characters, no '::'). */
export function platformWord(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined
  if (typeof v !== 'string' || !/^[A-Za-z0-9._+-]{1,64}$/.test(v)) return 'invalid'
  return v
}

/** `os/architecture[/variant]` of a descriptor's platform, `unknown` where it says nothing. */
export function platformOf(d: Pick<Descriptor, 'platform'>): string {
  const p = d.platform
  if (!p || typeof p !== 'object') return 'unknown'
  return [platformWord(p.os) ?? 'unknown', platformWord(p.architecture) ?? 'unknown', platformWord(p.variant)]
    .filter(Boolean)
    .join('/')
}

export class Copier {
  blobsMounted = 0
  blobsUploaded = 0
  manifestsCopied = 0
  constructor(
    private readonly client: RegistryClient,
    private readonly to: string,
    private readonly limit: number,
    private readonly log: (line: string) => void
  ) {}

  /** Makes everything `m` (read from `from`) references exist in the target repository (children by digest; not m itself). */
  async contents(from: string, m: Manifest): Promise<void> {
    if (isIndex(m.mediaType)) {
      await mapLimit(childManifests(m.bytes), this.limit, child => this.manifest(from, child))
      return
    }
    await mapLimit(manifestBlobs(m.bytes), this.limit, async blob => {
      const how = await this.client.copyBlob(from, this.to, blob.digest, blob.size)
      if (how === 'uploaded') this.blobsUploaded++
      else this.blobsMounted++
      this.log(`blob ${blob.digest} (${blob.size} bytes): ${how}`)
    })
  }

  /** The manifest `d` names, from `from`, put by digest in the target with its contents; false when it was there. */
  async manifest(from: string, d: Descriptor, what = platformOf(d)): Promise<boolean> {
    if (await this.present(d.digest)) return false
    await this.write(from, await this.client.getManifest(from, d.digest), what)
    return true
  }

  /** `m` (already read from `from`) put by digest in the target with its contents; false when it was there. */
  async put(from: string, m: Manifest, what = m.mediaType): Promise<boolean> {
    if (await this.present(m.digest)) return false
    await this.write(from, m, what)
    return true
  }

  private async write(from: string, m: Manifest, what: string): Promise<void> {
    await this.contents(from, m)
    await this.client.putManifest(this.to, m.digest, m.bytes, m.mediaType)
    this.manifestsCopied++
    this.log(`manifest ${m.digest} (${what}) put in ${this.to}`)
  }

  private async present(digest: string): Promise<boolean> {
    return (await this.client.headManifest(this.to, digest))?.digest === digest
  }
}

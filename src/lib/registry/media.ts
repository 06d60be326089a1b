/** Manifest media types and the parts of manifests the client and promote read. */
import { createHash } from 'node:crypto'

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

/** Accept header for manifest GET/HEAD: indexes first, so multi-platform images are never narrowed. */
export const MANIFEST_ACCEPT = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST].join(', ')

export function isIndex(mediaType: string): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_LIST
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** The digest of `bytes` in the algorithm of `like` (a valid sha256: or sha512: digest). */
export function digestLike(like: string, bytes: Uint8Array): string {
  const algorithm = like.startsWith('sha512:') ? 'sha512' : 'sha256'
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
}

const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/

/** A bare media type (RFC 6838 type/subtype, no parameters): safe to send as a Content-Type. */
export function isMediaType(s: string): boolean {
  return MEDIA_TYPE.test(s)
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: { os?: string; architecture?: string; variant?: string; 'os.version'?: string }
  annotations?: Record<string, string>
  /** OCI 1.1: the artifact's type (on referrer descriptors and artifact manifests) */
  artifactType?: string
}

interface ManifestJson {
  mediaType?: string
  config?: Descriptor
  layers?: Descriptor[]
  manifests?: Descriptor[]
  blobs?: Descriptor[]
  subject?: Descriptor
}

function parseManifestJson(bytes: Uint8Array): ManifestJson {
  return JSON.parse(Buffer.from(bytes).toString('utf8')) as ManifestJson
}

/** The media type a manifest declares in its body (used when the registry's Content-Type is generic). */
export function declaredMediaType(bytes: Uint8Array): string | undefined {
  try {
    const m = parseManifestJson(bytes)
    if (m.mediaType) return m.mediaType
    if (m.manifests) return OCI_INDEX
    if (m.config) return OCI_MANIFEST
  } catch {
    /* not JSON */
  }
  return undefined
}

/** Children of an index (manifests) — empty for an image manifest. */
export function childManifests(bytes: Uint8Array): Descriptor[] {
  return parseManifestJson(bytes).manifests ?? []
}

/** Blobs an image manifest references: config first, then layers (foreign/non-distributable skipped). */
export function manifestBlobs(bytes: Uint8Array): Descriptor[] {
  const m = parseManifestJson(bytes)
  const out: Descriptor[] = []
  if (m.config) out.push(m.config)
  for (const l of m.layers ?? m.blobs ?? []) {
    if (/foreign|nondistributable/.test(l.mediaType ?? '')) continue
    out.push(l)
  }
  return out
}

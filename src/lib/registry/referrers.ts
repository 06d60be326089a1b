/**
 * OCI 1.1 referrers: artifacts (provenance, SBOMs, signatures) attached to an image by a manifest whose
 * `subject` is the image's digest, so no image index is touched. The registry's Referrers API
 * (`GET /v2/<name>/referrers/<digest>`) is used when it answers 200 with an index; otherwise the
 * tag schema of the distribution spec: the tag `sha256-<hex>` holds an index of the referrers, updated
 * read-modify-write (docker-registry 2.8, and ghcr.io at the time of writing, have no Referrers API).
 */
import { UserError } from '../errors.js'
import type { Manifest, RegistryClient } from './client.js'
import { mapLimit, type Copier } from './copy.js'
import { quote, RegistryError } from './errors.js'
import {
  childManifests,
  isIndex,
  isMediaType,
  OCI_INDEX,
  OCI_MANIFEST,
  sha256,
  type Descriptor
} from './media.js'
import { isDigest } from './reference.js'

/** artifactType of an in-toto statement (SLSA provenance and other attestations) */
export const IN_TOTO = 'application/vnd.in-toto+json'
/** the OCI empty descriptor's media type: the config of an artifact manifest */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json'
const EMPTY_BYTES = Buffer.from('{}')

export interface ReferrerList {
  /** true: the registry's Referrers API answered; false: the tag schema was read */
  api: boolean
  referrers: Descriptor[]
}

export interface PushReferrerOptions {
  client: RegistryClient
  repository: string
  /** digest of the image (or index) the artifact is about; it must exist in `repository` */
  subject: string
  /** e.g. IN_TOTO */
  artifactType: string
  /** the artifact itself, e.g. an in-toto statement's JSON */
  payload: Buffer
  /** media type of the payload layer (default: artifactType) */
  payloadMediaType?: string
  /** manifest annotations (none by default, so the same payload gives the same digest) */
  annotations?: Record<string, string>
  log?: (line: string) => void
}

export interface PushedReferrer {
  /** the referrer manifest's digest */
  digest: string
  /** its descriptor, as listed among the subject's referrers */
  descriptor: Descriptor
  /** true: the registry's Referrers API indexes it; false: it was added to the tag `tag` */
  api: boolean
  /** the tag schema's tag (`sha256-<hex>`), also when the API is used */
  tag: string
}

/** The tag schema's tag of a digest: `<alg>-<hex>` (alg cut at 32, hex at 64 characters). */
export function referrersTag(digest: string): string {
  const [alg, hex] = digest.split(':')
  return `${alg.slice(0, 32)}-${hex.slice(0, 64)}`
}

/** An attestation's artifactType: in-toto statements and the provenance / SLSA types that carry them. */
export function isAttestationType(artifactType: string | undefined): boolean {
  return !!artifactType && /in-toto|provenance|slsa/i.test(artifactType)
}

function checkSubject(subject: string): void {
  if (!isDigest(subject))
    throw new UserError(
      `referrers: the subject ${quote(subject)} is not a digest; give the image's sha256: digest (build-push's 'digest' output).`
    )
}

/** The referrers index under the tag schema's tag: null when there is none. */
async function readTagIndex(
  client: RegistryClient,
  repository: string,
  subject: string
): Promise<Manifest | null> {
  const tag = referrersTag(subject)
  if (!(await client.headManifest(repository, tag))) return null
  const m = await client.getManifest(repository, tag)
  if (m.mediaType !== OCI_INDEX) {
    throw new RegistryError(
      `${client.registry}/${repository}:${tag} should hold the OCI index of the referrers of ${subject}, but holds a ${m.mediaType}; move that tag away (it is reserved for referrers by the OCI distribution spec).`,
      {
        registry: client.registry,
        method: 'GET',
        path: `/v2/${repository}/manifests/${tag}`,
        repository,
        reference: tag
      }
    )
  }
  return m
}

/** Descriptors a registry listed, kept only when their artifactType (if any) is a media type. */
function sane(ds: Descriptor[]): Descriptor[] {
  return ds.filter(
    d => d.artifactType === undefined || (typeof d.artifactType === 'string' && isMediaType(d.artifactType))
  )
}

/** The referrers of `digest` in `repository`: through the Referrers API when offered, else the tag schema. */
export async function listReferrers(
  client: RegistryClient,
  repository: string,
  digest: string,
  opts: { artifactType?: string } = {}
): Promise<ReferrerList> {
  checkSubject(digest)
  const api = await client.referrers(repository, digest, opts.artifactType)
  if (api) return { api: true, referrers: sane(api) }
  const index = await readTagIndex(client, repository, digest)
  const all = index ? sane(childManifests(index.bytes)) : []
  return {
    api: false,
    referrers: opts.artifactType ? all.filter(d => d.artifactType === opts.artifactType) : all
  }
}

/**
 * true when `digest` has a referrer whose artifactType is an attestation (in-toto, provenance, SLSA). For
 * an image index without one of its own: true when every image of the index has one (per-platform builds
 * attest their own image).
 */
export async function hasAttestation(
  client: RegistryClient,
  repository: string,
  digest: string
): Promise<boolean> {
  const attested = async (d: string): Promise<boolean> =>
    (await listReferrers(client, repository, d)).referrers.some(r => isAttestationType(r.artifactType))
  if (await attested(digest)) return true
  const m = await client.getManifest(repository, digest)
  if (!isIndex(m.mediaType)) return false
  const children = childManifests(m.bytes)
  if (children.length === 0) return false
  return (await mapLimit(children, 4, c => attested(c.digest))).every(Boolean)
}

/**
 * Adds descriptors to the tag schema's index of `subject` (read, add what is missing, PUT, read back; again
 * when another writer got in between, 3 times at most). Returns how many were added.
 */
async function addToTagIndex(
  client: RegistryClient,
  repository: string,
  subject: string,
  add: Descriptor[]
): Promise<number> {
  const tag = referrersTag(subject)
  for (let attempt = 1; ; attempt++) {
    const current = await readTagIndex(client, repository, subject)
    const index = current
      ? (JSON.parse(current.bytes.toString('utf8')) as { manifests?: Descriptor[] })
      : { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] as Descriptor[] }
    const have = new Set((index.manifests ?? []).map(d => d.digest))
    const missing = add.filter(d => !have.has(d.digest))
    if (missing.length === 0) return 0
    index.manifests = [...(index.manifests ?? []), ...missing]
    const bytes = Buffer.from(JSON.stringify(index))
    await client.putManifest(repository, tag, bytes, OCI_INDEX)
    const back = await readTagIndex(client, repository, subject)
    const now = new Set(back ? childManifests(back.bytes).map(d => d.digest) : [])
    if (missing.every(d => now.has(d.digest))) return missing.length
    if (attempt >= 3) {
      throw new UserError(
        `${client.registry}/${repository}:${tag}: the referrers index kept changing while it was updated (another job writes referrers of ${subject}); run the job again.`
      )
    }
  }
}

/** Pushes `payload` as an OCI 1.1 artifact manifest whose subject is `subject`, and makes it listed. */
export async function pushReferrer(o: PushReferrerOptions): Promise<PushedReferrer> {
  const { client, repository } = o
  const log = o.log ?? (() => {})
  checkSubject(o.subject)
  for (const [name, v] of [
    ['artifactType', o.artifactType],
    ['payloadMediaType', o.payloadMediaType ?? o.artifactType]
  ] as const) {
    if (!isMediaType(v))
      throw new UserError(`referrers: ${name} ${quote(v)} is not a media type (type/subtype).`)
  }
  client.authorize(repository, ['pull', 'push'])
  const subject = await client.getManifest(repository, o.subject)
  const emptyDigest = sha256(EMPTY_BYTES)
  const payloadDigest = sha256(o.payload)
  await client.uploadBlob(repository, emptyDigest, EMPTY_BYTES)
  await client.uploadBlob(repository, payloadDigest, o.payload)
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: o.artifactType,
    config: { mediaType: OCI_EMPTY, digest: emptyDigest, size: EMPTY_BYTES.length },
    layers: [
      { mediaType: o.payloadMediaType ?? o.artifactType, digest: payloadDigest, size: o.payload.length }
    ],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    ...(o.annotations && Object.keys(o.annotations).length ? { annotations: o.annotations } : {})
  }
  const bytes = Buffer.from(JSON.stringify(manifest))
  const digest = await client.putManifest(repository, sha256(bytes), bytes, OCI_MANIFEST)
  const descriptor: Descriptor = {
    mediaType: OCI_MANIFEST,
    digest,
    size: bytes.length,
    artifactType: o.artifactType,
    ...(manifest.annotations ? { annotations: manifest.annotations } : {})
  }
  const tag = referrersTag(subject.digest)
  const api = (await client.referrers(repository, subject.digest)) !== null
  if (!api) await addToTagIndex(client, repository, subject.digest, [descriptor])
  log(`referrer ${digest} (${o.artifactType}) of ${subject.digest}: ${api ? 'Referrers API' : `tag ${tag}`}`)
  return { digest, descriptor, api, tag }
}

/**
 * Copies the referrers of each digest in `subjects` from `from` to the copier's target repository
 * (manifests by digest, blobs mounted; the tag schema's index updated when the registry has no API).
 * Idempotent; returns how many referrer manifests were written.
 */
export async function copyReferrers(
  client: RegistryClient,
  copier: Copier,
  from: string,
  to: string,
  subjects: string[],
  log: (line: string) => void
): Promise<number> {
  if (from === to) return 0
  let copied = 0
  await mapLimit(subjects, 3, async subject => {
    const { api, referrers } = await listReferrers(client, from, subject)
    if (referrers.length === 0) return
    for (const d of referrers) if (await copier.manifest(from, d, d.artifactType ?? d.mediaType)) copied++
    const added = api ? 0 : await addToTagIndex(client, to, subject, referrers)
    log(
      `referrers of ${subject}: ${referrers.length} in ${from}${api ? '' : `, ${added} added to ${to}:${referrersTag(subject)}`}`
    )
  })
  return copied
}

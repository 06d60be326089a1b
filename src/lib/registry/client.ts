/**
 * A small OCI distribution client on Node's fetch: the `/v2/` challenge (anonymous, Basic, or the Bearer
 * realm/service/scope token flow of ghcr.io and Docker Hub, one token for every repository in play),
 * manifests by exact bytes, blob HEAD / cross-repository mount / streamed copy, tag listing, and retries
 * with capped, jittered backoff on 5xx, 429 (Retry-After) and dropped connections within a time budget.
 *
 * What the registry says is not trusted further than it has to be: credentials go only to the registry's
 * own origin (and Basic ones to the token realm, for the token request alone), never to another origin a
 * `Location` or `Link` names; every digest from a response is checked against the OCI grammar before it
 * is used in a URL or compared; manifests (4 MiB), token answers (1 MiB) and other bodies have size caps,
 * every request a time limit, and every blob copy an overall deadline (`blobTimeoutMs`).
 * Plain module: no @actions/core.
 *
 * `RegistryClient` is the facade over the parts: http.ts (requests, retries, deadlines, body caps, which
 * URLs to follow), auth.ts (challenge, tokens, scopes, where credentials go; every request goes out
 * through its `send`), upload.ts (blob HEAD, mount, uploads and copies), checks.ts (grammar checks on
 * names, digests and descriptors). Manifests and tag lists are read and written here.
 */
import { RegistryAuth, type Action } from './auth.js'
import {
  checkBlobArgs,
  checkDescriptors,
  checkRepository,
  KNOWN_MANIFEST_TYPES,
  manifestPath,
  refName,
  remoteDigest
} from './checks.js'
import { quote, RegistryError, RegistryProtocolError, type RegistryErrorFacts } from './errors.js'
import { BODY_LIMIT_BYTES, MiB, RegistryHttp, type ClientStats, type HttpOptions } from './http.js'
import {
  childManifests,
  declaredMediaType,
  digestLike,
  isMediaType,
  MANIFEST_ACCEPT,
  OCI_INDEX,
  sha256,
  type Descriptor
} from './media.js'
import { isDigest, isTag } from './reference.js'
import { BlobUploads } from './upload.js'

export { parseChallenge, TOKEN_LIMIT_BYTES } from './auth.js'
export { retryAfterMs, type ClientStats, type RetryOptions } from './http.js'

export interface RegistryClientOptions extends HttpOptions {
  username?: string
  password?: string
}

export interface ManifestInfo {
  digest: string
  mediaType: string
  size: number
}

export interface Manifest extends ManifestInfo {
  bytes: Buffer
}

/** the distribution spec's limit on manifests a registry must accept */
const MANIFEST_LIMIT_BYTES = 4 * MiB

export class RegistryClient {
  readonly registry: string
  readonly base: string
  readonly stats: ClientStats
  private readonly http: RegistryHttp
  private readonly auth: RegistryAuth
  private readonly blobs: BlobUploads

  constructor(opts: RegistryClientOptions) {
    this.http = new RegistryHttp(opts)
    this.auth = new RegistryAuth(this.http, opts.username, opts.password)
    this.blobs = new BlobUploads(this.http, this.auth)
    this.registry = this.http.registry
    this.base = this.http.base
    this.stats = this.http.stats
  }

  /**
   * Declares the repositories and actions this client will use, so one Bearer token covers them all
   * (ghcr.io: `repository:src:pull repository:dst:pull,push` in one token request).
   */
  authorize(repository: string, actions: Action[]): void {
    this.auth.authorize(repository, actions)
  }

  // ---------------------------------------------------------------- manifests

  /** GET a manifest by tag or digest: exact bytes, the digest computed over them, the media type. */
  async getManifest(repository: string, reference: string): Promise<Manifest> {
    const path = manifestPath(this.registry, 'GET', repository, reference)
    const facts: RegistryErrorFacts = { registry: this.registry, method: 'GET', path, repository, reference }
    const res = await this.auth.send({
      method: 'GET',
      path,
      repository,
      reference,
      actions: ['pull'],
      headers: { accept: MANIFEST_ACCEPT },
      ok: [200],
      limit: {
        bytes: MANIFEST_LIMIT_BYTES,
        what: `the manifest ${refName(this.registry, repository, reference)}`,
        why: "the distribution spec's limit for manifests"
      }
    })
    const bytes = Buffer.from(await res.arrayBuffer())
    const digest = sha256(bytes)
    const header = remoteDigest(this.registry, res, facts)
    if (header && digestLike(header, bytes) !== header) {
      throw new RegistryError(
        `${refName(this.registry, repository, reference)}: the registry says ${header} but the bytes it sent hash to ${digestLike(header, bytes)}; a proxy may be rewriting manifests.`,
        facts
      )
    }
    if (isDigest(reference) && digestLike(reference, bytes) !== reference) {
      throw new RegistryError(
        `${this.registry}/${repository}@${reference}: the manifest received hashes to ${digestLike(reference, bytes)}; refusing it.`,
        facts
      )
    }
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0].trim()
    // the registry's Content-Type when it is a manifest type (that is what gets PUT back), else what the body declares
    const mediaType = KNOWN_MANIFEST_TYPES.has(contentType)
      ? contentType
      : (declaredMediaType(bytes) ?? contentType)
    if (mediaType && !isMediaType(mediaType)) {
      throw new RegistryProtocolError(
        `${refName(this.registry, repository, reference)}: the manifest's media type ${quote(mediaType)} is not a media type; refusing it.`,
        facts
      )
    }
    checkDescriptors(this.registry, bytes, mediaType, facts)
    return { digest, mediaType, size: bytes.length, bytes }
  }

  /** Resolves a tag or digest to the manifest's digest (plus its bytes, read once). */
  async resolve(repository: string, tagOrDigest: string): Promise<Manifest> {
    return this.getManifest(repository, tagOrDigest)
  }

  /** HEAD a manifest: its digest, media type and size, or null when the tag or digest does not exist. */
  async headManifest(repository: string, reference: string): Promise<ManifestInfo | null> {
    const path = manifestPath(this.registry, 'HEAD', repository, reference)
    const res = await this.auth.send({
      method: 'HEAD',
      path,
      repository,
      reference,
      actions: ['pull'],
      headers: { accept: MANIFEST_ACCEPT },
      ok: [200],
      pass: [404]
    })
    if (res.status === 404) return null
    const digest = remoteDigest(this.registry, res, {
      registry: this.registry,
      method: 'HEAD',
      path,
      repository,
      reference
    })
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim()
    const length = res.headers.get('content-length') ?? ''
    if (!digest || (mediaType && !isMediaType(mediaType))) {
      // a registry that does not say the digest (or a usable media type) on HEAD: read the bytes
      const m = await this.getManifest(repository, reference)
      return { digest: m.digest, mediaType: m.mediaType, size: m.size }
    }
    return { digest, mediaType, size: /^\d{1,15}$/.test(length) ? Number(length) : 0 }
  }

  /** PUT the exact bytes under a tag or digest with the exact Content-Type; returns the digest. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string
  ): Promise<string> {
    const digest = sha256(bytes)
    const path = manifestPath(this.registry, 'PUT', repository, reference)
    const res = await this.auth.send({
      method: 'PUT',
      path,
      repository,
      reference,
      actions: ['pull', 'push'],
      headers: { 'content-type': mediaType },
      body: bytes,
      ok: [201, 200, 202]
    })
    await this.http.drain(res)
    const facts: RegistryErrorFacts = { registry: this.registry, method: 'PUT', path, repository, reference }
    const answered = remoteDigest(this.registry, res, facts)
    if (answered && answered !== digestLike(answered, bytes)) {
      throw new RegistryError(
        `${refName(this.registry, repository, reference)}: the registry stored ${answered} for a manifest whose digest is ${digestLike(answered, bytes)}; it rewrote the manifest.`,
        facts
      )
    }
    return digest
  }

  // ---------------------------------------------------------------- blobs (upload.ts)

  async blobExists(repository: string, digest: string): Promise<boolean> {
    return this.blobs.exists(repository, digest)
  }

  /**
   * Cross-repository mount: true when the registry mounted the blob (201); false when it refused (202),
   * in which case the upload session it opened is cancelled.
   */
  async mountBlob(fromRepository: string, toRepository: string, digest: string): Promise<boolean> {
    return this.blobs.mount(fromRepository, toRepository, digest)
  }

  /** Mounts a blob, or copies it (streamed, retried) when the registry will not mount it. */
  async copyBlob(
    fromRepository: string,
    toRepository: string,
    digest: string,
    size?: number
  ): Promise<'mounted' | 'uploaded' | 'present'> {
    return this.blobs.copy(fromRepository, toRepository, digest, size)
  }

  /**
   * GET a small blob whole (an image config, an attestation), at most `limitBytes` (default 4 MiB); the
   * bytes must hash to `digest`.
   */
  async getBlob(repository: string, digest: string, limitBytes = BODY_LIMIT_BYTES): Promise<Buffer> {
    checkBlobArgs(this.registry, 'GET', repository, digest)
    const path = `/v2/${repository}/blobs/${digest}`
    const res = await this.auth.send({
      method: 'GET',
      path,
      repository,
      reference: digest,
      actions: ['pull'],
      ok: [200],
      limit: {
        bytes: limitBytes,
        what: `the blob ${this.registry}/${repository}@${digest}`,
        why: 'the limit for a blob read whole (configs, attestations)'
      }
    })
    const bytes = Buffer.from(await res.arrayBuffer())
    if (digestLike(digest, bytes) !== digest) {
      throw new RegistryProtocolError(
        `${this.registry}/${repository}: the blob ${digest} received hashes to ${digestLike(digest, bytes)}; refusing it.`,
        { registry: this.registry, method: 'GET', path, repository, reference: digest }
      )
    }
    return bytes
  }

  /**
   * The OCI 1.1 Referrers API: the descriptors of the manifests whose `subject` is `digest`, filtered by
   * `artifactType` when given (by the registry when it says so, else here); `null` when the registry does
   * not offer the API (404, as docker-registry 2.8 answers), so the caller falls back to the tag schema.
   */
  async referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[] | null> {
    checkBlobArgs(this.registry, 'GET', repository, digest)
    const path = `/v2/${repository}/referrers/${digest}`
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''
    const facts: RegistryErrorFacts = {
      registry: this.registry,
      method: 'GET',
      path,
      repository,
      reference: digest
    }
    const res = await this.auth.send({
      method: 'GET',
      path,
      url: `${this.base}${path}${query}`,
      repository,
      reference: digest,
      actions: ['pull'],
      headers: { accept: OCI_INDEX },
      ok: [200],
      pass: [404, 400, 405, 501],
      limit: {
        bytes: MANIFEST_LIMIT_BYTES,
        what: `the referrers of ${this.registry}/${repository}@${digest}`,
        why: "the distribution spec's limit for manifests"
      }
    })
    if (res.status !== 200) {
      await this.http.drain(res)
      return null
    }
    const bytes = Buffer.from(await res.arrayBuffer())
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0].trim()
    if (contentType !== OCI_INDEX && declaredMediaType(bytes) !== OCI_INDEX) {
      // a 200 that is not an index (an HTML page, a catch-all route): not the Referrers API
      return null
    }
    checkDescriptors(this.registry, bytes, OCI_INDEX, facts)
    const all = childManifests(bytes)
    const filtered = (res.headers.get('oci-filters-applied') ?? '').includes('artifactType')
    return artifactType && !filtered ? all.filter(d => d.artifactType === artifactType) : all
  }

  /** Uploads a blob from memory (POST, then PUT ?digest= with the body; restarted on failure); a no-op when it exists. */
  async uploadBlob(repository: string, digest: string, data: Buffer): Promise<void> {
    return this.blobs.upload(repository, digest, data)
  }

  // ---------------------------------------------------------------- tags

  async listTags(repository: string): Promise<string[]> {
    checkRepository(this.registry, 'GET', repository, `/v2/${repository}/tags/list`)
    const tags: string[] = []
    const seen = new Set<string>()
    let next: string | undefined = `${this.base}/v2/${repository}/tags/list?n=1000`
    for (let page = 0; next && page < 1000; page++) {
      seen.add(next)
      const path = new URL(next).pathname
      const facts: RegistryErrorFacts = { registry: this.registry, method: 'GET', path, repository }
      const res = await this.auth.send({
        method: 'GET',
        path,
        url: next,
        repository,
        actions: ['pull'],
        ok: [200],
        limit: {
          bytes: BODY_LIMIT_BYTES,
          what: `the tag list of ${this.registry}/${repository}`,
          why: 'the limit for one page of tags'
        }
      })
      const text = await res.text()
      let body: { tags?: unknown }
      try {
        body = JSON.parse(text) as { tags?: unknown }
      } catch {
        throw new RegistryProtocolError(
          `${this.registry}/${repository}: the tag list is not JSON (${quote(text, 60)}); refusing it.`,
          { ...facts, status: res.status }
        )
      }
      const page = body?.tags ?? []
      if (!Array.isArray(page) || page.some(t => typeof t !== 'string' || !isTag(t))) {
        throw new RegistryProtocolError(
          `${this.registry}/${repository}: the tag list holds ${quote(page)}, which is not a list of tags; refusing it.`,
          { ...facts, status: res.status }
        )
      }
      tags.push(...(page as string[]))
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')
      next = link ? this.http.remoteUrl(link[1], next, 'Link', facts) : undefined
      if (next && seen.has(next)) {
        throw new RegistryProtocolError(
          `${this.registry}/${repository}: the tag list's Link header leads back to a page already read (${quote(next)}); refusing to loop.`,
          facts
        )
      }
    }
    return tags
  }
}

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
 */
import {
  httpError,
  networkError,
  parseErrorBody,
  quote,
  RegistryError,
  RegistryProtocolError,
  type RegistryErrorFacts
} from './errors.js'
import {
  declaredMediaType,
  digestLike,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  isMediaType,
  MANIFEST_ACCEPT,
  OCI_INDEX,
  OCI_MANIFEST,
  sha256
} from './media.js'
import { apiHost, isDigest, isLoopback, isRepository, isTag } from './reference.js'

export interface RetryOptions {
  /** attempts per request, the first included (default 6) */
  attempts?: number
  /** first backoff delay (default 250 ms); doubles each attempt */
  baseDelayMs?: number
  /** cap on one backoff delay and on a Retry-After we honour (default 10 s / 30 s) */
  maxDelayMs?: number
  maxRetryAfterMs?: number
  /** total time one request may spend retrying (default 120 s) */
  budgetMs?: number
}

export interface RegistryClientOptions {
  /** registry host as in image references: ghcr.io, docker.io, 127.0.0.1:5000 */
  registry: string
  username?: string
  password?: string
  /** plain http (default: true for loopback hosts only) */
  insecure?: boolean
  retry?: RetryOptions
  /** time limit of one request without a streamed body (default 60 s) */
  requestTimeoutMs?: number
  /**
   * overall deadline of one blob copy or upload, restarts included, and of any streamed body
   * (default 30 min)
   */
  blobTimeoutMs?: number
  /** debug lines (never contain credentials) */
  log?: (line: string) => void
  userAgent?: string
}

export interface ManifestInfo {
  digest: string
  mediaType: string
  size: number
}

export interface Manifest extends ManifestInfo {
  bytes: Buffer
}

export interface ClientStats {
  requests: number
  /** body bytes received (manifests, blobs, tokens, errors) */
  bytesIn: number
  /** body bytes sent */
  bytesOut: number
  retries: number
  mounts: number
  uploads: number
}

type Action = 'pull' | 'push'

interface Challenge {
  scheme: 'none' | 'basic' | 'bearer'
  realm?: string
  service?: string
}

/** An overall deadline shared by the requests of one blob copy. */
interface Deadline {
  signal: AbortSignal
  /** the error to throw once it has passed */
  error: () => RegistryProtocolError
}

/** A cap on a response body read whole: `what` is named in the error (e.g. "the manifest ghcr.io/a/b:v1"). */
interface BodyLimit {
  bytes: number
  what: string
  /** why this limit, e.g. "the distribution spec's limit for manifests" */
  why: string
}

interface SendOptions {
  /** a streamed request body (never retried by send itself) */
  streamBody?: ReadableStream<Uint8Array>
  method: string
  path: string
  repository?: string
  reference?: string
  actions?: Action[]
  headers?: Record<string, string>
  body?: Buffer
  /** statuses returned to the caller instead of thrown */
  ok: number[]
  /** statuses returned too (e.g. 404 for HEAD) */
  pass?: number[]
  /** keep the response body unread (streaming) */
  stream?: boolean
  /** a URL (e.g. an upload Location) instead of path */
  url?: string
  noRetry?: boolean
  /** the overall deadline this request is part of (a blob copy) */
  deadline?: Deadline
  /** cap on the body when it is read whole (default 4 MiB) */
  limit?: BodyLimit
  /** time limit of this request instead of requestTimeoutMs (not streamed ones) */
  timeoutMs?: number
}

const KNOWN_MANIFEST_TYPES = new Set([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
const MiB = 1024 * 1024
/** the distribution spec's limit on manifests a registry must accept */
export const MANIFEST_LIMIT_BYTES = 4 * MiB
export const TOKEN_LIMIT_BYTES = 1 * MiB
/** any other body read whole (tag lists, upload answers, the /v2/ ping) */
const BODY_LIMIT_BYTES = 4 * MiB
/** an error answer is read for its message only: the rest is dropped */
const ERROR_BODY_BYTES = 64 * 1024
const DIGEST_GRAMMAR = 'sha256: and 64 lowercase hex characters, or sha512: and 128'
const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504])
const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

/** Parses `Bearer realm="…",service="…",scope="…"` (or Basic …) into its scheme and parameters. */
export function parseChallenge(
  header: string | null
): { scheme: string; params: Record<string, string> } | undefined {
  if (!header) return undefined
  const m = /^\s*(\w+)\s*(.*)$/.exec(header)
  if (!m) return undefined
  const params: Record<string, string> = {}
  for (const p of m[2].matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g))
    params[p[1].toLowerCase()] = p[2] ?? p[3]
  return { scheme: m[1].toLowerCase(), params }
}

/** Retry-After as milliseconds (seconds or an HTTP date); undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}

function formatBytes(n: number): string {
  return n % MiB === 0 ? `${n / MiB} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`
}

function formatMs(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`
  return `${Math.round(ms / 100) / 10} s`
}

function causeOf(e: unknown): string {
  const err = e as {
    name?: string
    message?: string
    code?: string
    cause?: { code?: string; message?: string }
  }
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return 'timed out'
  return err?.cause?.code ?? err?.code ?? err?.cause?.message ?? err?.message ?? String(e)
}

export class RegistryClient {
  readonly registry: string
  readonly base: string
  readonly stats: ClientStats = { requests: 0, bytesIn: 0, bytesOut: 0, retries: 0, mounts: 0, uploads: 0 }
  private readonly username?: string
  private readonly password?: string
  private readonly retry: Required<RetryOptions>
  private readonly timeoutMs: number
  private readonly blobTimeoutMs: number
  private readonly origin: string
  private readonly log: (line: string) => void
  private readonly userAgent: string
  private challenge?: Promise<Challenge>
  private readonly scopes = new Map<string, Set<Action>>()
  private readonly tokens = new Map<string, Promise<{ token: string; expires: number }>>()

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry
    const insecure = opts.insecure ?? isLoopback(opts.registry)
    this.base = `${insecure ? 'http' : 'https'}://${apiHost(opts.registry)}`
    this.origin = new URL(this.base).origin
    this.username = opts.username || undefined
    this.password = opts.password || undefined
    this.retry = {
      attempts: opts.retry?.attempts ?? 6,
      baseDelayMs: opts.retry?.baseDelayMs ?? 250,
      maxDelayMs: opts.retry?.maxDelayMs ?? 10_000,
      maxRetryAfterMs: opts.retry?.maxRetryAfterMs ?? 30_000,
      budgetMs: opts.retry?.budgetMs ?? 120_000
    }
    this.timeoutMs = opts.requestTimeoutMs ?? 60_000
    this.blobTimeoutMs = opts.blobTimeoutMs ?? 30 * 60_000
    this.log = opts.log ?? (() => {})
    this.userAgent = opts.userAgent ?? 'shipline'
  }

  /**
   * Declares the repositories and actions this client will use, so one Bearer token covers them all
   * (ghcr.io: `repository:src:pull repository:dst:pull,push` in one token request).
   */
  authorize(repository: string, actions: Action[]): void {
    const set = this.scopes.get(repository) ?? new Set<Action>()
    for (const a of actions) set.add(a)
    this.scopes.set(repository, set)
  }

  // ---------------------------------------------------------------- manifests

  /** GET a manifest by tag or digest: exact bytes, the digest computed over them, the media type. */
  async getManifest(repository: string, reference: string): Promise<Manifest> {
    const path = this.manifestPath('GET', repository, reference)
    const facts: RegistryErrorFacts = { registry: this.registry, method: 'GET', path, repository, reference }
    const res = await this.send({
      method: 'GET',
      path,
      repository,
      reference,
      actions: ['pull'],
      headers: { accept: MANIFEST_ACCEPT },
      ok: [200],
      limit: {
        bytes: MANIFEST_LIMIT_BYTES,
        what: `the manifest ${this.refName(repository, reference)}`,
        why: "the distribution spec's limit for manifests"
      }
    })
    const bytes = Buffer.from(await res.arrayBuffer())
    const digest = sha256(bytes)
    const header = this.remoteDigest(res, facts)
    if (header && digestLike(header, bytes) !== header) {
      throw new RegistryError(
        `${this.refName(repository, reference)}: the registry says ${header} but the bytes it sent hash to ${digestLike(header, bytes)}; a proxy may be rewriting manifests.`,
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
        `${this.refName(repository, reference)}: the manifest's media type ${quote(mediaType)} is not a media type; refusing it.`,
        facts
      )
    }
    this.checkDescriptors(bytes, mediaType, facts)
    return { digest, mediaType, size: bytes.length, bytes }
  }

  /** Resolves a tag or digest to the manifest's digest (plus its bytes, read once). */
  async resolve(repository: string, tagOrDigest: string): Promise<Manifest> {
    return this.getManifest(repository, tagOrDigest)
  }

  /** HEAD a manifest: its digest, media type and size, or null when the tag or digest does not exist. */
  async headManifest(repository: string, reference: string): Promise<ManifestInfo | null> {
    const path = this.manifestPath('HEAD', repository, reference)
    const res = await this.send({
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
    const digest = this.remoteDigest(res, {
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
    const path = this.manifestPath('PUT', repository, reference)
    const res = await this.send({
      method: 'PUT',
      path,
      repository,
      reference,
      actions: ['pull', 'push'],
      headers: { 'content-type': mediaType },
      body: bytes,
      ok: [201, 200, 202]
    })
    await this.drain(res)
    const facts: RegistryErrorFacts = { registry: this.registry, method: 'PUT', path, repository, reference }
    const answered = this.remoteDigest(res, facts)
    if (answered && answered !== digestLike(answered, bytes)) {
      throw new RegistryError(
        `${this.refName(repository, reference)}: the registry stored ${answered} for a manifest whose digest is ${digestLike(answered, bytes)}; it rewrote the manifest.`,
        facts
      )
    }
    return digest
  }

  // ---------------------------------------------------------------- blobs

  async blobExists(repository: string, digest: string): Promise<boolean> {
    return this.blobExistsWithin(repository, digest)
  }

  private async blobExistsWithin(repository: string, digest: string, deadline?: Deadline): Promise<boolean> {
    this.checkBlobArgs('HEAD', repository, digest)
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${digest}`,
      repository,
      reference: digest,
      actions: ['pull'],
      ok: [200],
      pass: [404],
      deadline
    })
    return res.status === 200
  }

  /**
   * Cross-repository mount: true when the registry mounted the blob (201); false when it refused (202),
   * in which case the upload session it opened is cancelled.
   */
  async mountBlob(fromRepository: string, toRepository: string, digest: string): Promise<boolean> {
    this.checkBlobArgs('POST', fromRepository, digest)
    const location = await this.tryMount(fromRepository, toRepository, digest)
    if (location === true) return true
    await this.cancelUpload(location, toRepository)
    return false
  }

  /** Mounts a blob, or copies it (streamed, retried) when the registry will not mount it. */
  async copyBlob(
    fromRepository: string,
    toRepository: string,
    digest: string,
    size?: number
  ): Promise<'mounted' | 'uploaded' | 'present'> {
    this.checkBlobArgs('GET', fromRepository, digest)
    this.checkBlobArgs('POST', toRepository, digest)
    if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0)) {
      throw new RegistryProtocolError(
        `blob ${digest} of ${this.registry}/${fromRepository}: its size ${quote(size)} is not a byte count; refusing to copy it.`,
        this.blobFacts('GET', fromRepository, digest)
      )
    }
    if (fromRepository === toRepository) return 'present'
    const deadline = this.deadline(
      `copying blob ${digest} from ${this.registry}/${fromRepository} to ${this.registry}/${toRepository}`,
      this.blobFacts('PUT', toRepository, digest)
    )
    const location = await this.tryMount(fromRepository, toRepository, digest, deadline)
    if (location === true) return 'mounted'
    if (await this.blobExistsWithin(toRepository, digest, deadline)) {
      await this.cancelUpload(location, toRepository)
      return 'present'
    }
    await this.streamCopy(fromRepository, toRepository, digest, size, location, deadline)
    return 'uploaded'
  }

  /** Uploads a blob from memory (POST, then PUT ?digest= with the body; restarted on failure); a no-op when it exists. */
  async uploadBlob(repository: string, digest: string, data: Buffer): Promise<void> {
    this.checkBlobArgs('POST', repository, digest)
    const deadline = this.deadline(
      `uploading blob ${digest} to ${this.registry}/${repository}`,
      this.blobFacts('PUT', repository, digest)
    )
    if (await this.blobExistsWithin(repository, digest, deadline)) return
    await this.uploadWithRestarts(repository, digest, undefined, deadline, location =>
      this.finishUpload(location, repository, digest, deadline, data)
    )
  }

  async listTags(repository: string): Promise<string[]> {
    this.checkRepository('GET', repository, `/v2/${repository}/tags/list`)
    const tags: string[] = []
    const seen = new Set<string>()
    let next: string | undefined = `${this.base}/v2/${repository}/tags/list?n=1000`
    for (let page = 0; next && page < 1000; page++) {
      seen.add(next)
      const path = new URL(next).pathname
      const facts: RegistryErrorFacts = { registry: this.registry, method: 'GET', path, repository }
      const res = await this.send({
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
      next = link ? this.remoteUrl(link[1], next, 'Link', facts) : undefined
      if (next && seen.has(next)) {
        throw new RegistryProtocolError(
          `${this.registry}/${repository}: the tag list's Link header leads back to a page already read (${quote(next)}); refusing to loop.`,
          facts
        )
      }
    }
    return tags
  }

  // ---------------------------------------------------------------- checks on what the registry says

  private refName(repository: string, reference: string): string {
    return `${this.registry}/${repository}${isDigest(reference) ? '@' : ':'}${reference}`
  }

  private blobFacts(method: string, repository: string, digest: string): RegistryErrorFacts {
    return {
      registry: this.registry,
      method,
      path: `/v2/${repository}/blobs/${digest}`,
      repository,
      reference: digest
    }
  }

  /** A repository name goes into URL paths: it must be one by the distribution grammar. */
  private checkRepository(method: string, repository: string, path: string): void {
    if (!isRepository(repository)) {
      throw new RegistryProtocolError(
        `${this.registry}: ${quote(repository)} is not a repository name (lowercase path components of letters and digits, separated by '.', '_', '__' or '-'); refusing to use it in a request.`,
        { registry: this.registry, method, path, repository }
      )
    }
  }

  /** `/v2/<repository>/manifests/<reference>`, once both are known to be safe in a URL path. */
  private manifestPath(method: string, repository: string, reference: string): string {
    const path = `/v2/${repository}/manifests/${reference}`
    this.checkRepository(method, repository, path)
    if (!isTag(reference) && !isDigest(reference)) {
      throw new RegistryProtocolError(
        `${this.registry}/${repository}: ${quote(reference)} is neither a tag nor a digest (${DIGEST_GRAMMAR}); refusing to use it in a request.`,
        { registry: this.registry, method, path, repository, reference }
      )
    }
    return path
  }

  private checkBlobArgs(method: string, repository: string, digest: string): void {
    this.checkRepository(method, repository, `/v2/${repository}/blobs/`)
    if (typeof digest !== 'string' || !isDigest(digest)) {
      throw new RegistryProtocolError(
        `${this.registry}/${repository}: the blob digest ${quote(digest)} is not a digest (${DIGEST_GRAMMAR}); refusing to use it in a request.`,
        { registry: this.registry, method, path: `/v2/${repository}/blobs/`, repository }
      )
    }
  }

  /** The Docker-Content-Digest of an answer: undefined when absent; a clear error when it is not a digest. */
  private remoteDigest(res: Response, facts: RegistryErrorFacts): string | undefined {
    const header = res.headers.get('docker-content-digest')?.trim()
    if (!header) return undefined
    if (!isDigest(header)) {
      throw new RegistryProtocolError(
        `${this.registry}/${facts.repository ?? ''}: the registry answered ${facts.method} ${facts.path} with the Docker-Content-Digest ${quote(header)}, which is not a digest (${DIGEST_GRAMMAR}); refusing it.`,
        { ...facts, status: res.status }
      )
    }
    return header
  }

  /**
   * Every descriptor of a manifest or index (config, layers, blobs, child manifests, subject) must carry a
   * digest by the OCI grammar and, when it says one, a byte count: these digests become request paths
   * (a child PUT by digest, a blob mount) and comparisons.
   */
  private checkDescriptors(bytes: Buffer, mediaType: string, facts: RegistryErrorFacts): void {
    const where = this.refName(facts.repository ?? '', facts.reference ?? '')
    let m: Record<string, unknown>
    try {
      m = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
    } catch {
      if (KNOWN_MANIFEST_TYPES.has(mediaType))
        throw new RegistryProtocolError(
          `${where}: the ${mediaType} manifest is not JSON; refusing it.`,
          facts
        )
      return
    }
    if (!m || typeof m !== 'object') {
      if (KNOWN_MANIFEST_TYPES.has(mediaType))
        throw new RegistryProtocolError(`${where}: the manifest is not a JSON object; refusing it.`, facts)
      return
    }
    const fields: [string, unknown][] = [
      ['config', m.config],
      ['subject', m.subject]
    ]
    for (const list of ['layers', 'blobs', 'manifests']) {
      const v = m[list]
      if (v === undefined) continue
      if (!Array.isArray(v))
        throw new RegistryProtocolError(`${where}: the manifest's ${list} is not a list; refusing it.`, facts)
      v.forEach((d, i) => fields.push([`${list}[${i}]`, d]))
    }
    for (const [field, d] of fields) {
      if (d === undefined) continue
      const desc = d as { digest?: unknown; size?: unknown } | null
      if (!desc || typeof desc !== 'object' || typeof desc.digest !== 'string' || !isDigest(desc.digest)) {
        throw new RegistryProtocolError(
          `${where}: the manifest's ${field} has the digest ${quote(desc?.digest)}, which is not a digest (${DIGEST_GRAMMAR}); refusing to use it.`,
          facts
        )
      }
      if (desc.size !== undefined && !(Number.isSafeInteger(desc.size) && (desc.size as number) >= 0)) {
        throw new RegistryProtocolError(
          `${where}: the manifest's ${field} (${desc.digest}) has the size ${quote(desc.size)}, which is not a byte count; refusing it.`,
          facts
        )
      }
    }
  }

  /**
   * A URL the registry hands us (an upload Location, a Link to the next page, the token realm), resolved
   * against the URL it came with: http(s) only, and no plain http from a registry spoken to over https
   * (except to loopback).
   */
  private remoteUrl(raw: string, relativeTo: string, header: string, facts: RegistryErrorFacts): string {
    let u: URL
    try {
      u = new URL(raw.trim(), relativeTo)
    } catch {
      throw new RegistryProtocolError(
        `${this.registry} answered ${facts.method} ${facts.path} with a ${header} that is not a URL (${quote(raw)}); refusing to follow it.`,
        facts
      )
    }
    const secure = this.base.startsWith('https:')
    if (
      (u.protocol !== 'http:' && u.protocol !== 'https:') ||
      (u.protocol === 'http:' && secure && !isLoopback(u.host)) ||
      u.username ||
      u.password
    ) {
      throw new RegistryProtocolError(
        `${this.registry} answered ${facts.method} ${facts.path} with a ${header} ${quote(u.protocol === 'http:' || u.protocol === 'https:' ? u.origin + u.pathname : raw)} that shipline does not follow (only https, or http to loopback, without user info); refusing it.`,
        facts
      )
    }
    return u.toString()
  }

  /** A deadline of blobTimeoutMs for one blob copy or upload (every request in it, restarts included). */
  private deadline(what: string, facts: RegistryErrorFacts): Deadline {
    const ms = this.blobTimeoutMs
    return {
      signal: AbortSignal.timeout(ms),
      error: () =>
        new RegistryProtocolError(
          `${what} did not finish within ${formatMs(ms)} (the blob time limit): the registry is stalled or too slow; run the job again, or allow more time.`,
          facts
        )
    }
  }

  // ---------------------------------------------------------------- blob internals

  /** true when mounted, else the upload Location the registry opened instead. */
  private async tryMount(
    fromRepository: string,
    toRepository: string,
    digest: string,
    deadline?: Deadline
  ): Promise<true | string> {
    this.authorize(fromRepository, ['pull'])
    const path = `/v2/${toRepository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`
    const res = await this.send({
      method: 'POST',
      path,
      repository: toRepository,
      reference: digest,
      actions: ['pull', 'push'],
      ok: [201, 202],
      deadline
    })
    await this.drain(res)
    if (res.status === 201) {
      this.stats.mounts++
      return true
    }
    return this.location(res, toRepository, `${this.base}${path}`)
  }

  private async startUpload(repository: string, deadline?: Deadline): Promise<string> {
    const path = `/v2/${repository}/blobs/uploads/`
    const res = await this.send({
      method: 'POST',
      path,
      repository,
      actions: ['pull', 'push'],
      ok: [202],
      deadline
    })
    await this.drain(res)
    return this.location(res, repository, `${this.base}${path}`)
  }

  /** The upload Location of an answer, resolved against the URL of the request that got it. */
  private location(res: Response, repository: string, requestUrl: string): string {
    const loc = res.headers.get('location')
    if (!loc) {
      throw new RegistryError(
        `${this.registry} opened an upload for ${repository} without a Location header; it is not an OCI registry.`,
        {
          registry: this.registry,
          method: 'POST',
          path: `/v2/${repository}/blobs/uploads/`,
          status: res.status
        }
      )
    }
    return this.remoteUrl(loc, requestUrl, 'Location', {
      registry: this.registry,
      method: 'POST',
      path: `/v2/${repository}/blobs/uploads/`,
      repository,
      status: res.status
    })
  }

  private withDigest(location: string, digest: string): string {
    const u = new URL(location)
    u.searchParams.set('digest', digest)
    return u.toString()
  }

  /** Best effort: a session left open expires on the registry. `quick` after a deadline: 5 s at most. */
  private async cancelUpload(location: string, repository: string, quick = false): Promise<void> {
    try {
      const res = await this.send({
        method: 'DELETE',
        path: new URL(location).pathname,
        url: location,
        repository,
        actions: ['pull', 'push'],
        ok: [200, 202, 204],
        pass: [404, 405],
        noRetry: true,
        ...(quick ? { timeoutMs: Math.min(this.timeoutMs, 5000) } : {})
      })
      await this.drain(res)
    } catch (e) {
      this.log(`cancelling upload ${location} failed: ${String(e)}`)
    }
  }

  /**
   * Runs one blob upload into `to`, starting it again in a new upload session whenever it fails in a way
   * worth retrying (dropped connection, 408/429/5xx), within the attempt and time budget. `upload` gets the
   * session's Location and must finish the blob (PUT ?digest=).
   */
  private async uploadWithRestarts(
    to: string,
    digest: string,
    firstLocation: string | undefined,
    deadline: Deadline,
    upload: (location: string) => Promise<void>
  ): Promise<void> {
    const started = Date.now()
    let location = firstLocation
    for (let attempt = 1; ; attempt++) {
      try {
        location ??= await this.startUpload(to, deadline)
        await upload(location)
        this.stats.uploads++
        return
      } catch (e) {
        if (deadline.signal.aborted) {
          if (location) await this.cancelUpload(location, to, true)
          throw deadline.error()
        }
        if (e instanceof RegistryProtocolError) {
          if (location) await this.cancelUpload(location, to)
          throw e
        }
        if (e instanceof RegistryError && e.status !== undefined && !RETRY_STATUS.has(e.status)) throw e
        const elapsed = Date.now() - started
        if (attempt >= this.retry.attempts || elapsed > this.retry.budgetMs) {
          if (e instanceof RegistryError) throw e
          throw networkError(
            {
              registry: this.registry,
              method: 'PATCH',
              path: `/v2/${to}/blobs/uploads/`,
              repository: to,
              reference: digest
            },
            causeOf(e),
            attempt,
            elapsed
          )
        }
        this.stats.retries++
        this.log(
          `blob upload ${digest} → ${to} failed (${causeOf(e)}); starting it again (attempt ${attempt + 1})`
        )
        if (location) await this.cancelUpload(location, to)
        location = undefined
        await sleep(this.backoff(attempt))
      }
    }
  }

  /** Closes an upload session with PUT ?digest= (a body only for monolithic uploads). */
  private async finishUpload(
    location: string,
    to: string,
    digest: string,
    deadline: Deadline,
    body?: Buffer
  ): Promise<void> {
    const url = this.withDigest(location, digest)
    const res = await this.send({
      method: 'PUT',
      path: new URL(url).pathname,
      url,
      repository: to,
      reference: digest,
      actions: ['pull', 'push'],
      headers: body ? { 'content-type': 'application/octet-stream' } : { 'content-length': '0' },
      body,
      ok: [201, 204],
      noRetry: true,
      deadline
    })
    await this.drain(res)
  }

  /**
   * Streams a blob from one repository into another: GET (streamed) → PATCH into the upload session →
   * PUT ?digest= to close it; restarted from scratch on failure.
   */
  private async streamCopy(
    from: string,
    to: string,
    digest: string,
    size: number | undefined,
    firstLocation: string,
    deadline: Deadline
  ): Promise<void> {
    await this.uploadWithRestarts(to, digest, firstLocation, deadline, async location => {
      const src = await this.send({
        method: 'GET',
        path: `/v2/${from}/blobs/${digest}`,
        repository: from,
        reference: digest,
        actions: ['pull'],
        ok: [200],
        stream: true,
        deadline
      })
      if (!src.body) throw new Error('empty blob body')
      const declared = src.headers.get('content-length') ?? ''
      const length = size ?? (/^\d{1,15}$/.test(declared) ? Number(declared) : undefined)
      let moved = 0
      // web streams carry a source error through to the upload (node's pipe() would leave it hanging)
      const body = src.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform: (chunk, ctl) => {
            moved += chunk.length
            // a source that sends more than the blob's size is cut off there, not read on
            if (length !== undefined && moved > length) {
              ctl.error(new Error(`the source sent more than the ${length} bytes of blob ${digest}`))
              return
            }
            this.stats.bytesIn += chunk.length
            this.stats.bytesOut += chunk.length
            ctl.enqueue(chunk)
          }
        })
      )
      const patch = await this.send({
        method: 'PATCH',
        path: new URL(location).pathname,
        url: location,
        repository: to,
        reference: digest,
        actions: ['pull', 'push'],
        headers: {
          'content-type': 'application/octet-stream',
          ...(length !== undefined ? { 'content-length': String(length) } : {})
        },
        streamBody: body,
        ok: [202, 204],
        noRetry: true,
        deadline
      })
      await this.drain(patch)
      if (length !== undefined && moved !== length) throw new Error(`copied ${moved} of ${length} bytes`)
      await this.finishUpload(this.location(patch, to, location), to, digest, deadline)
    })
  }

  // ---------------------------------------------------------------- HTTP, auth, retries

  private backoff(attempt: number): number {
    const d = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1))
    return Math.round(d / 2 + (Math.random() * d) / 2)
  }

  /**
   * Reads a response body to the end (counted) and hands back an equivalent, already-read response.
   * A success body larger than `limit` is refused (by its Content-Length before reading, else once that
   * many bytes came); an error body is read for its first 64 KiB only (it is only quoted in a message).
   */
  private async buffered(res: Response, limit: BodyLimit, facts: RegistryErrorFacts): Promise<Response> {
    const success = res.status >= 200 && res.status < 300
    const buf = res.body
      ? await this.readCapped(
          res,
          success ? limit.bytes : ERROR_BODY_BYTES,
          success ? () => this.tooLarge(limit, facts, res.status) : undefined
        )
      : undefined
    const nullBody = [101, 204, 205, 304].includes(res.status)
    return new Response(nullBody ? null : buf, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers
    })
  }

  private tooLarge(limit: BodyLimit, facts: RegistryErrorFacts, status: number): RegistryProtocolError {
    return new RegistryProtocolError(
      `${limit.what} is larger than ${formatBytes(limit.bytes)}, ${limit.why}; refusing to read it (${facts.method} ${facts.path}).`,
      { ...facts, status }
    )
  }

  /**
   * At most `limit` bytes of a body: past it, `tooLarge()` is thrown (before reading, when the
   * Content-Length says so), or without `tooLarge` the rest is dropped unread.
   */
  private async readCapped(
    res: Response,
    limit: number,
    tooLarge?: () => RegistryProtocolError
  ): Promise<Buffer> {
    const declared = res.headers.get('content-length') ?? ''
    if (tooLarge && /^\d+$/.test(declared) && Number(declared) > limit) {
      await res.body?.cancel().catch(() => undefined)
      throw tooLarge()
    }
    const reader = res.body!.getReader()
    const chunks: Uint8Array[] = []
    let total = 0
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      this.stats.bytesIn += value.length
      if (total + value.length > limit) {
        await reader.cancel().catch(() => undefined)
        if (tooLarge) throw tooLarge()
        chunks.push(value.subarray(0, limit - total))
        total = limit
        break
      }
      chunks.push(value)
      total += value.length
    }
    return Buffer.concat(chunks, total)
  }

  /** Discards a response's body: a buffered one is already read, a streamed one is cancelled, not read on. */
  private async drain(res: Response): Promise<void> {
    if (res.bodyUsed || !res.body) return
    await res.body.cancel().catch(() => undefined)
  }

  /**
   * Runs one request until it gets an answer that is not worth retrying: network errors, 408/429/5xx are
   * retried with capped, jittered backoff (Retry-After honoured up to a cap) within the attempt and time
   * budget. Returns that answer; throws a mapped error when the budget is spent.
   */
  private async fetchRetrying(
    facts: RegistryErrorFacts,
    doFetch: () => Promise<Response>,
    {
      noRetry = false,
      buffer = true,
      limit = {
        bytes: BODY_LIMIT_BYTES,
        what: `the answer of ${facts.registry} to ${facts.method} ${facts.path}`,
        why: 'the limit for registry answers'
      },
      deadline
    }: { noRetry?: boolean; buffer?: boolean; limit?: BodyLimit; deadline?: Deadline } = {}
  ): Promise<{ res: Response; attempts: number; elapsed: number }> {
    const started = Date.now()
    for (let attempt = 1; ; attempt++) {
      let res: Response
      try {
        if (deadline?.signal.aborted) throw deadline.error()
        this.stats.requests++
        res = await doFetch()
        // the body is read here, so a connection cut off halfway through it is retried like any other drop
        if (buffer) res = await this.buffered(res, limit, facts)
      } catch (e) {
        if (e instanceof RegistryError) throw e
        if (deadline?.signal.aborted) throw deadline.error()
        const elapsed = Date.now() - started
        if (noRetry) throw e
        if (
          /ENOTFOUND|CERT|certificate/.test(causeOf(e)) ||
          attempt >= this.retry.attempts ||
          elapsed > this.retry.budgetMs
        ) {
          throw networkError(facts, causeOf(e), attempt, elapsed)
        }
        this.stats.retries++
        const wait = this.backoff(attempt)
        this.log(`${facts.method} ${facts.path}: ${causeOf(e)}; retrying in ${wait} ms`)
        await sleep(wait)
        continue
      }
      const elapsed = Date.now() - started
      if (!noRetry && RETRY_STATUS.has(res.status)) {
        const after = retryAfterMs(res.headers.get('retry-after'))
        const wait = after !== undefined ? Math.min(after, this.retry.maxRetryAfterMs) : this.backoff(attempt)
        if (
          attempt < this.retry.attempts &&
          elapsed + wait <= this.retry.budgetMs &&
          !deadline?.signal.aborted
        ) {
          if (!buffer) await this.drain(res)
          this.stats.retries++
          this.log(`${facts.method} ${facts.path}: ${res.status}; retrying in ${wait} ms`)
          await sleep(wait)
          continue
        }
      }
      return { res, attempts: attempt, elapsed }
    }
  }

  /** One request with auth and retries. Returns responses in `ok`/`pass`; throws a mapped RegistryError otherwise. */
  private async send(o: SendOptions): Promise<Response> {
    if (o.repository && o.actions) this.authorize(o.repository, o.actions)
    const url = o.url ?? this.base + o.path
    // credentials are for the registry itself: another origin (an upload Location or a Link on a storage
    // host, a CDN, anyone) gets the request without them
    const own = new URL(url).origin === this.origin
    // a streamed body (either way) has no request time limit of its own, only the blob deadline
    const deadline =
      o.deadline ??
      (o.stream || o.streamBody
        ? this.deadline(`${o.method} ${url}`, {
            registry: this.registry,
            method: o.method,
            path: o.path,
            repository: o.repository,
            reference: o.reference
          })
        : undefined)
    const facts: RegistryErrorFacts = {
      registry: this.registry,
      method: o.method,
      path: o.path,
      repository: o.repository,
      reference: o.reference,
      anonymous: !this.username && !this.password
    }
    for (let round = 1; ; round++) {
      const { res, attempts, elapsed } = await this.fetchRetrying(
        facts,
        async () => {
          const authorization = own ? await this.authorization(facts) : undefined
          const headers: Record<string, string> = { 'user-agent': this.userAgent, ...o.headers }
          if (authorization) headers.authorization = authorization
          const init: RequestInit & { duplex?: 'half' } = { method: o.method, headers, redirect: 'follow' }
          if (o.streamBody) {
            init.body = o.streamBody
            init.duplex = 'half'
          } else if (o.body) {
            init.body = o.body
            this.stats.bytesOut += o.body.length
          }
          const timeout =
            o.stream || o.streamBody ? undefined : AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs)
          const signals = [timeout, deadline?.signal].filter((s): s is AbortSignal => !!s)
          init.signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0]
          this.log(`${o.method} ${url}${own ? '' : ' (another origin: without credentials)'}`)
          return fetch(url, init)
        },
        { noRetry: o.noRetry || !!o.streamBody, buffer: !o.stream, limit: o.limit, deadline }
      )
      if (o.ok.includes(res.status) || o.pass?.includes(res.status)) return res
      const challenge = parseChallenge(res.headers.get('www-authenticate'))
      if (
        res.status === 401 &&
        round === 1 &&
        own &&
        !o.streamBody &&
        (await this.reauthorize(res, challenge, facts))
      )
        continue
      const text =
        o.method === 'HEAD'
          ? ''
          : o.stream && res.body
            ? // a streamed answer's error body: its first 64 KiB, for the message
              (await this.readCapped(res, ERROR_BODY_BYTES).catch(() => Buffer.alloc(0))).toString('utf8')
            : await res.text().catch(() => '')
      // a valid token without the rights asked for is a 403 in substance (ghcr.io, distribution)
      const status = res.status === 401 && challenge?.params.error === 'insufficient_scope' ? 403 : res.status
      throw httpError({ ...facts, ...parseErrorBody(text), status }, attempts, elapsed)
    }
  }

  private async ping(): Promise<Challenge> {
    const facts: RegistryErrorFacts = { registry: this.registry, method: 'GET', path: '/v2/' }
    const { res, attempts, elapsed } = await this.fetchRetrying(facts, () =>
      fetch(`${this.base}/v2/`, {
        headers: { 'user-agent': this.userAgent },
        signal: AbortSignal.timeout(this.timeoutMs)
      })
    )
    const text = await res.text().catch(() => '')
    if (res.status === 200) return { scheme: 'none' }
    if (res.status === 401) {
      const c = parseChallenge(res.headers.get('www-authenticate'))
      if (c?.scheme === 'bearer' && c.params.realm) {
        const realm = this.remoteUrl(c.params.realm, `${this.base}/v2/`, 'token realm', {
          ...facts,
          status: 401
        })
        return { scheme: 'bearer', realm, service: c.params.service }
      }
      if (c?.scheme === 'basic') return { scheme: 'basic' }
      throw new RegistryError(
        `${this.registry} asks for an authentication scheme shipline does not speak ('${res.headers.get('www-authenticate')}').`,
        {
          ...facts,
          status: 401
        }
      )
    }
    if (res.status === 404) {
      throw new RegistryError(
        `${this.registry} does not serve the registry API at ${this.base}/v2/ (404): check the registry host.`,
        {
          ...facts,
          status: 404
        }
      )
    }
    throw httpError({ ...facts, status: res.status, ...parseErrorBody(text) }, attempts, elapsed)
  }

  private scopeList(): string[] {
    return [...this.scopes.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([repo, acts]) => `repository:${repo}:${[...acts].sort().join(',')}`)
  }

  private basic(): string | undefined {
    if (!this.username && !this.password) return undefined
    return `Basic ${Buffer.from(`${this.username ?? ''}:${this.password ?? ''}`).toString('base64')}`
  }

  private async authorization(facts: RegistryErrorFacts): Promise<string | undefined> {
    this.challenge ??= this.ping()
    let challenge: Challenge
    try {
      challenge = await this.challenge
    } catch (e) {
      this.challenge = undefined
      throw e
    }
    if (challenge.scheme === 'none') return undefined
    if (challenge.scheme === 'basic') {
      const b = this.basic()
      if (!b) throw httpError({ ...facts, status: 401 })
      return b
    }
    const scopes = this.scopeList()
    const key = scopes.join(' ')
    const cached = this.tokens.get(key)
    if (cached) {
      try {
        const t = await cached
        if (t.expires > Date.now() + 10_000) return `Bearer ${t.token}`
      } catch {
        /* fetch again */
      }
    }
    const pending = this.fetchToken(challenge, scopes, facts)
    this.tokens.set(key, pending)
    try {
      return `Bearer ${(await pending).token}`
    } catch (e) {
      this.tokens.delete(key)
      throw e
    }
  }

  /** A 401 on a request: learn the scope the registry asks for (insufficient_scope) and get a new token. */
  private async reauthorize(
    res: Response,
    c: ReturnType<typeof parseChallenge>,
    facts: RegistryErrorFacts
  ): Promise<boolean> {
    if (c?.scheme !== 'bearer') return false
    await this.drain(res)
    for (const scope of (c.params.scope ?? '').split(' ')) {
      const m = /^repository:(.+):([a-z,*]+)$/.exec(scope)
      if (m && isRepository(m[1]))
        this.authorize(
          m[1],
          m[2].split(',').filter((a): a is Action => a === 'pull' || a === 'push')
        )
    }
    this.tokens.delete(this.scopeList().join(' '))
    this.log(`401 on ${facts.method} ${facts.path}: asking for a new token`)
    return true
  }

  private async fetchToken(
    challenge: Challenge,
    scopes: string[],
    facts: RegistryErrorFacts
  ): Promise<{ token: string; expires: number }> {
    const url = new URL(challenge.realm!)
    if (challenge.service) url.searchParams.set('service', challenge.service)
    for (const s of scopes) url.searchParams.append('scope', s)
    const headers: Record<string, string> = { 'user-agent': this.userAgent }
    const basic = this.basic()
    if (basic) headers.authorization = basic
    this.log(`token: GET ${url.origin}${url.pathname} scopes ${scopes.join(' ') || '(none)'}`)
    const tokenFacts = { ...facts, method: 'GET', path: `${url.pathname} (token service ${url.host})` }
    const { res, attempts, elapsed } = await this.fetchRetrying(
      tokenFacts,
      () => fetch(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) }),
      {
        limit: {
          bytes: TOKEN_LIMIT_BYTES,
          what: `the token answer of ${url.origin} (the token service of ${this.registry})`,
          why: 'the limit for token answers'
        }
      }
    )
    const text = await res.text().catch(() => '')
    if (res.status === 200) {
      let body: { token?: unknown; access_token?: unknown; expires_in?: unknown }
      try {
        body = JSON.parse(text) as typeof body
      } catch {
        throw new RegistryProtocolError(
          `the token service of ${this.registry} (${url.origin}) answered with something that is not JSON (${quote(text, 60)}).`,
          { ...tokenFacts, status: 200 }
        )
      }
      const token = body?.token ?? body?.access_token
      if (!token)
        throw new RegistryError(`the token service of ${this.registry} answered without a token.`, {
          ...facts,
          status: 200
        })
      // the token goes into an Authorization header: visible ASCII only (token68 and JWTs are)
      if (typeof token !== 'string' || !/^[\x21-\x7e]{1,65536}$/.test(token))
        throw new RegistryProtocolError(
          `the token service of ${this.registry} (${url.origin}) answered with a token that cannot go in an Authorization header (not visible ASCII); refusing it.`,
          { ...tokenFacts, status: 200 }
        )
      const lifetime =
        typeof body.expires_in === 'number' && Number.isFinite(body.expires_in) && body.expires_in > 0
          ? Math.min(body.expires_in, 24 * 3600)
          : 60
      return { token, expires: Date.now() + lifetime * 1000 }
    }
    // a refused token request is about the credentials (or their rights on these repositories)
    throw httpError({ ...facts, status: res.status, ...parseErrorBody(text) }, attempts, elapsed)
  }
}

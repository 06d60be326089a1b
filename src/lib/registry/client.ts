/**
 * A small OCI distribution client on Node's fetch: the `/v2/` challenge (anonymous, Basic, or the Bearer
 * realm/service/scope token flow of ghcr.io and Docker Hub, one token for every repository in play),
 * manifests by exact bytes, blob HEAD / cross-repository mount / streamed copy, tag listing, and retries
 * with capped, jittered backoff on 5xx, 429 (Retry-After) and dropped connections within a time budget.
 * Plain module: no @actions/core.
 */
import { httpError, networkError, parseErrorBody, RegistryError, type RegistryErrorFacts } from './errors.js'
import {
  declaredMediaType,
  DOCKER_LIST,
  DOCKER_MANIFEST,
  MANIFEST_ACCEPT,
  OCI_INDEX,
  OCI_MANIFEST,
  sha256
} from './media.js'
import { apiHost, isDigest, isLoopback } from './reference.js'

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
}

const KNOWN_MANIFEST_TYPES = new Set([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
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
  private readonly log: (line: string) => void
  private readonly userAgent: string
  private challenge?: Promise<Challenge>
  private readonly scopes = new Map<string, Set<Action>>()
  private readonly tokens = new Map<string, Promise<{ token: string; expires: number }>>()

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry
    const insecure = opts.insecure ?? isLoopback(opts.registry)
    this.base = `${insecure ? 'http' : 'https'}://${apiHost(opts.registry)}`
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
    const res = await this.send({
      method: 'GET',
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      reference,
      actions: ['pull'],
      headers: { accept: MANIFEST_ACCEPT },
      ok: [200]
    })
    const bytes = Buffer.from(await res.arrayBuffer())
    const digest = sha256(bytes)
    const header = res.headers.get('docker-content-digest')
    const facts: RegistryErrorFacts = {
      registry: this.registry,
      method: 'GET',
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      reference
    }
    if (header && header.startsWith('sha256:') && header !== digest) {
      throw new RegistryError(
        `${this.registry}/${repository}:${reference}: the registry says ${header} but the bytes it sent hash to ${digest}; a proxy may be rewriting manifests.`,
        facts
      )
    }
    if (isDigest(reference) && reference.startsWith('sha256:') && reference !== digest) {
      throw new RegistryError(
        `${this.registry}/${repository}@${reference}: the manifest received hashes to ${digest}; refusing it.`,
        facts
      )
    }
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0].trim()
    // the registry's Content-Type when it is a manifest type (that is what gets PUT back), else what the body declares
    const mediaType = KNOWN_MANIFEST_TYPES.has(contentType)
      ? contentType
      : (declaredMediaType(bytes) ?? contentType)
    return { digest, mediaType, size: bytes.length, bytes }
  }

  /** Resolves a tag or digest to the manifest's digest (plus its bytes, read once). */
  async resolve(repository: string, tagOrDigest: string): Promise<Manifest> {
    return this.getManifest(repository, tagOrDigest)
  }

  /** HEAD a manifest: its digest, media type and size, or null when the tag or digest does not exist. */
  async headManifest(repository: string, reference: string): Promise<ManifestInfo | null> {
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      reference,
      actions: ['pull'],
      headers: { accept: MANIFEST_ACCEPT },
      ok: [200],
      pass: [404]
    })
    if (res.status === 404) return null
    const digest = res.headers.get('docker-content-digest')
    if (!digest) {
      // a registry that does not say the digest on HEAD: read the bytes
      const m = await this.getManifest(repository, reference)
      return { digest: m.digest, mediaType: m.mediaType, size: m.size }
    }
    return {
      digest,
      mediaType: (res.headers.get('content-type') ?? '').split(';')[0].trim(),
      size: Number(res.headers.get('content-length') ?? 0)
    }
  }

  /** PUT the exact bytes under a tag or digest with the exact Content-Type; returns the digest. */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string
  ): Promise<string> {
    const digest = sha256(bytes)
    const res = await this.send({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      reference,
      actions: ['pull', 'push'],
      headers: { 'content-type': mediaType },
      body: bytes,
      ok: [201, 200, 202]
    })
    await this.drain(res)
    const answered = res.headers.get('docker-content-digest')
    if (answered && answered !== digest) {
      throw new RegistryError(
        `${this.registry}/${repository}:${reference}: the registry stored ${answered} for a manifest whose digest is ${digest}; it rewrote the manifest.`,
        {
          registry: this.registry,
          method: 'PUT',
          path: `/v2/${repository}/manifests/${reference}`,
          repository,
          reference
        }
      )
    }
    return digest
  }

  // ---------------------------------------------------------------- blobs

  async blobExists(repository: string, digest: string): Promise<boolean> {
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${digest}`,
      repository,
      reference: digest,
      actions: ['pull'],
      ok: [200],
      pass: [404]
    })
    return res.status === 200
  }

  /**
   * Cross-repository mount: true when the registry mounted the blob (201); false when it refused (202),
   * in which case the upload session it opened is cancelled.
   */
  async mountBlob(fromRepository: string, toRepository: string, digest: string): Promise<boolean> {
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
    if (fromRepository === toRepository) return 'present'
    const location = await this.tryMount(fromRepository, toRepository, digest)
    if (location === true) return 'mounted'
    if (await this.blobExists(toRepository, digest)) {
      await this.cancelUpload(location, toRepository)
      return 'present'
    }
    await this.streamCopy(fromRepository, toRepository, digest, size, location)
    return 'uploaded'
  }

  /** Uploads a blob from memory (POST, then PUT ?digest= with the body; restarted on failure); a no-op when it exists. */
  async uploadBlob(repository: string, digest: string, data: Buffer): Promise<void> {
    if (await this.blobExists(repository, digest)) return
    await this.uploadWithRestarts(repository, digest, undefined, location =>
      this.finishUpload(location, repository, digest, data)
    )
  }

  async listTags(repository: string): Promise<string[]> {
    const tags: string[] = []
    let next: string | undefined = `${this.base}/v2/${repository}/tags/list?n=1000`
    for (let page = 0; next && page < 1000; page++) {
      const res = await this.send({
        method: 'GET',
        path: new URL(next).pathname,
        url: next,
        repository,
        actions: ['pull'],
        ok: [200]
      })
      const text = await res.text()
      const body = JSON.parse(text) as { tags?: string[] | null }
      tags.push(...(body.tags ?? []))
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')
      next = link ? new URL(link[1], this.base).toString() : undefined
    }
    return tags
  }

  // ---------------------------------------------------------------- blob internals

  /** true when mounted, else the upload Location the registry opened instead. */
  private async tryMount(
    fromRepository: string,
    toRepository: string,
    digest: string
  ): Promise<true | string> {
    this.authorize(fromRepository, ['pull'])
    const path = `/v2/${toRepository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`
    const res = await this.send({
      method: 'POST',
      path,
      repository: toRepository,
      reference: digest,
      actions: ['pull', 'push'],
      ok: [201, 202]
    })
    await this.drain(res)
    if (res.status === 201) {
      this.stats.mounts++
      return true
    }
    return this.location(res, toRepository)
  }

  private async startUpload(repository: string): Promise<string> {
    const res = await this.send({
      method: 'POST',
      path: `/v2/${repository}/blobs/uploads/`,
      repository,
      actions: ['pull', 'push'],
      ok: [202]
    })
    await this.drain(res)
    return this.location(res, repository)
  }

  private location(res: Response, repository: string): string {
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
    return new URL(loc, this.base).toString()
  }

  private withDigest(location: string, digest: string): string {
    const u = new URL(location)
    u.searchParams.set('digest', digest)
    return u.toString()
  }

  private async cancelUpload(location: string, repository: string): Promise<void> {
    try {
      const res = await this.send({
        method: 'DELETE',
        path: new URL(location).pathname,
        url: location,
        repository,
        actions: ['pull', 'push'],
        ok: [200, 202, 204],
        pass: [404, 405],
        noRetry: true
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
    upload: (location: string) => Promise<void>
  ): Promise<void> {
    const started = Date.now()
    let location = firstLocation
    for (let attempt = 1; ; attempt++) {
      try {
        location ??= await this.startUpload(to)
        await upload(location)
        this.stats.uploads++
        return
      } catch (e) {
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
  private async finishUpload(location: string, to: string, digest: string, body?: Buffer): Promise<void> {
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
      noRetry: true
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
    firstLocation: string
  ): Promise<void> {
    await this.uploadWithRestarts(to, digest, firstLocation, async location => {
      const src = await this.send({
        method: 'GET',
        path: `/v2/${from}/blobs/${digest}`,
        repository: from,
        reference: digest,
        actions: ['pull'],
        ok: [200],
        stream: true
      })
      if (!src.body) throw new Error('empty blob body')
      let moved = 0
      // web streams carry a source error through to the upload (node's pipe() would leave it hanging)
      const body = src.body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform: (chunk, ctl) => {
            moved += chunk.length
            this.stats.bytesIn += chunk.length
            this.stats.bytesOut += chunk.length
            ctl.enqueue(chunk)
          }
        })
      )
      const length = size ?? (Number(src.headers.get('content-length')) || undefined)
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
        noRetry: true
      })
      await this.drain(patch)
      if (length !== undefined && moved !== length) throw new Error(`copied ${moved} of ${length} bytes`)
      await this.finishUpload(this.location(patch, to), to, digest)
    })
  }

  // ---------------------------------------------------------------- HTTP, auth, retries

  private backoff(attempt: number): number {
    const d = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1))
    return Math.round(d / 2 + (Math.random() * d) / 2)
  }

  /** Reads a response body to the end (counted) and hands back an equivalent, already-read response. */
  private async buffered(res: Response): Promise<Response> {
    const buf = res.body ? Buffer.from(await res.arrayBuffer()) : undefined
    this.stats.bytesIn += buf?.length ?? 0
    const nullBody = [101, 204, 205, 304].includes(res.status)
    return new Response(nullBody ? null : buf, {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers
    })
  }

  /** Discards a streamed response's body (buffered ones were counted when read). */
  private async drain(res: Response): Promise<void> {
    if (res.bodyUsed || !res.body) return
    await res.arrayBuffer()
  }

  /**
   * Runs one request until it gets an answer that is not worth retrying: network errors, 408/429/5xx are
   * retried with capped, jittered backoff (Retry-After honoured up to a cap) within the attempt and time
   * budget. Returns that answer; throws a mapped error when the budget is spent.
   */
  private async fetchRetrying(
    facts: RegistryErrorFacts,
    doFetch: () => Promise<Response>,
    { noRetry = false, buffer = true }: { noRetry?: boolean; buffer?: boolean } = {}
  ): Promise<{ res: Response; attempts: number; elapsed: number }> {
    const started = Date.now()
    for (let attempt = 1; ; attempt++) {
      let res: Response
      try {
        this.stats.requests++
        res = await doFetch()
        // the body is read here, so a connection cut off halfway through it is retried like any other drop
        if (buffer) res = await this.buffered(res)
      } catch (e) {
        if (e instanceof RegistryError) throw e
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
        if (attempt < this.retry.attempts && elapsed + wait <= this.retry.budgetMs) {
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
          const authorization = await this.authorization(facts)
          const headers: Record<string, string> = { 'user-agent': this.userAgent, ...o.headers }
          if (authorization) headers.authorization = authorization
          const init: RequestInit & { duplex?: 'half' } = { method: o.method, headers, redirect: 'follow' }
          if (o.streamBody) {
            init.body = o.streamBody
            init.duplex = 'half'
          } else {
            if (o.body) {
              init.body = o.body
              this.stats.bytesOut += o.body.length
            }
            if (!o.stream) init.signal = AbortSignal.timeout(this.timeoutMs)
          }
          this.log(`${o.method} ${o.url ?? this.base + o.path}`)
          return fetch(o.url ?? this.base + o.path, init)
        },
        { noRetry: o.noRetry || !!o.streamBody, buffer: !o.stream }
      )
      if (o.ok.includes(res.status) || o.pass?.includes(res.status)) return res
      const challenge = parseChallenge(res.headers.get('www-authenticate'))
      if (
        res.status === 401 &&
        round === 1 &&
        !o.streamBody &&
        (await this.reauthorize(res, challenge, facts))
      )
        continue
      const text = o.method === 'HEAD' ? '' : await res.text().catch(() => '')
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
      if (c?.scheme === 'bearer' && c.params.realm)
        return { scheme: 'bearer', realm: c.params.realm, service: c.params.service }
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
    await res.arrayBuffer().catch(() => undefined)
    for (const scope of (c.params.scope ?? '').split(' ')) {
      const m = /^repository:(.+):([a-z,*]+)$/.exec(scope)
      if (m)
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
    const { res, attempts, elapsed } = await this.fetchRetrying(tokenFacts, () =>
      fetch(url, { headers, signal: AbortSignal.timeout(this.timeoutMs) })
    )
    const text = await res.text().catch(() => '')
    if (res.status === 200) {
      const body = JSON.parse(text) as { token?: string; access_token?: string; expires_in?: number }
      const token = body.token ?? body.access_token
      if (!token)
        throw new RegistryError(`the token service of ${this.registry} answered without a token.`, {
          ...facts,
          status: 200
        })
      return { token, expires: Date.now() + (body.expires_in ?? 60) * 1000 }
    }
    // a refused token request is about the credentials (or their rights on these repositories)
    throw httpError({ ...facts, status: res.status, ...parseErrorBody(text) }, attempts, elapsed)
  }
}

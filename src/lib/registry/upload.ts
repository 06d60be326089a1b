/**
 * Blobs into a repository: HEAD, cross-repository mount (`POST …/blobs/uploads/?mount=&from=`), and
 * uploads through an upload session, either monolithic from memory (POST, PUT ?digest= with the body) or
 * streamed from another repository (GET → PATCH → PUT ?digest=). A streamed body is never replayed by a
 * request: a failed upload starts again from scratch in a new session, within the retry budget, and all
 * of one copy or upload (mount attempt, HEAD, GET, PATCH, PUT and restarts) runs under one deadline
 * (`blobTimeoutMs`).
 */
import type { RegistryAuth } from './auth.js'
import { blobFacts, checkBlobArgs } from './checks.js'
import { networkError, quote, RegistryError, RegistryProtocolError } from './errors.js'
import { causeOf, RETRY_STATUS, sleep, type Deadline, type RegistryHttp } from './http.js'

export class BlobUploads {
  constructor(
    private readonly http: RegistryHttp,
    private readonly auth: RegistryAuth
  ) {}

  /** HEAD a blob: true when the repository has it. */
  async exists(repository: string, digest: string, deadline?: Deadline): Promise<boolean> {
    checkBlobArgs(this.http.registry, 'HEAD', repository, digest)
    const res = await this.auth.send({
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

  /** Mounts, and cancels the upload session the registry opens instead when it will not. */
  async mount(fromRepository: string, toRepository: string, digest: string): Promise<boolean> {
    checkBlobArgs(this.http.registry, 'POST', fromRepository, digest)
    const location = await this.tryMount(fromRepository, toRepository, digest)
    if (location === true) return true
    await this.cancelUpload(location, toRepository)
    return false
  }

  /** Mount, else (when the target does not have it already) a streamed copy. */
  async copy(
    fromRepository: string,
    toRepository: string,
    digest: string,
    size?: number
  ): Promise<'mounted' | 'uploaded' | 'present'> {
    const { registry } = this.http
    checkBlobArgs(registry, 'GET', fromRepository, digest)
    checkBlobArgs(registry, 'POST', toRepository, digest)
    if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0)) {
      throw new RegistryProtocolError(
        `blob ${digest} of ${registry}/${fromRepository}: its size ${quote(size)} is not a byte count; refusing to copy it.`,
        blobFacts(registry, 'GET', fromRepository, digest)
      )
    }
    if (fromRepository === toRepository) return 'present'
    const deadline = this.http.deadline(
      `copying blob ${digest} from ${registry}/${fromRepository} to ${registry}/${toRepository}`,
      blobFacts(registry, 'PUT', toRepository, digest)
    )
    const location = await this.tryMount(fromRepository, toRepository, digest, deadline)
    if (location === true) return 'mounted'
    if (await this.exists(toRepository, digest, deadline)) {
      await this.cancelUpload(location, toRepository)
      return 'present'
    }
    await this.streamCopy(fromRepository, toRepository, digest, size, location, deadline)
    return 'uploaded'
  }

  /** Monolithic upload from memory, unless the repository has the blob already. */
  async upload(repository: string, digest: string, data: Buffer): Promise<void> {
    const { registry } = this.http
    checkBlobArgs(registry, 'POST', repository, digest)
    const deadline = this.http.deadline(
      `uploading blob ${digest} to ${registry}/${repository}`,
      blobFacts(registry, 'PUT', repository, digest)
    )
    if (await this.exists(repository, digest, deadline)) return
    await this.uploadWithRestarts(repository, digest, undefined, deadline, location =>
      this.finishUpload(location, repository, digest, deadline, data)
    )
    this.http.stats.blobBytesUploaded += data.length
  }

  /** true when mounted, else the upload Location the registry opened instead. */
  private async tryMount(
    fromRepository: string,
    toRepository: string,
    digest: string,
    deadline?: Deadline
  ): Promise<true | string> {
    this.auth.authorize(fromRepository, ['pull'])
    const path = `/v2/${toRepository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`
    const res = await this.auth.send({
      method: 'POST',
      path,
      repository: toRepository,
      reference: digest,
      actions: ['pull', 'push'],
      ok: [201, 202],
      deadline
    })
    await this.http.drain(res)
    if (res.status === 201) {
      this.http.stats.mounts++
      return true
    }
    return this.location(res, toRepository, `${this.http.base}${path}`)
  }

  private async startUpload(repository: string, deadline?: Deadline): Promise<string> {
    const path = `/v2/${repository}/blobs/uploads/`
    const res = await this.auth.send({
      method: 'POST',
      path,
      repository,
      actions: ['pull', 'push'],
      ok: [202],
      deadline
    })
    await this.http.drain(res)
    return this.location(res, repository, `${this.http.base}${path}`)
  }

  /** The upload Location of an answer, resolved against the URL of the request that got it. */
  private location(res: Response, repository: string, requestUrl: string): string {
    const { registry } = this.http
    const loc = res.headers.get('location')
    if (!loc) {
      throw new RegistryError(
        `${registry} opened an upload for ${repository} without a Location header; it is not an OCI registry.`,
        {
          registry,
          method: 'POST',
          path: `/v2/${repository}/blobs/uploads/`,
          status: res.status
        }
      )
    }
    return this.http.remoteUrl(loc, requestUrl, 'Location', {
      registry,
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
      const res = await this.auth.send({
        method: 'DELETE',
        path: new URL(location).pathname,
        url: location,
        repository,
        actions: ['pull', 'push'],
        ok: [200, 202, 204],
        pass: [404, 405],
        noRetry: true,
        ...(quick ? { timeoutMs: Math.min(this.http.timeoutMs, 5000) } : {})
      })
      await this.http.drain(res)
    } catch (e) {
      this.http.log(`cancelling upload ${location} failed: ${String(e)}`)
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
    const { retry } = this.http
    const started = Date.now()
    let location = firstLocation
    for (let attempt = 1; ; attempt++) {
      try {
        location ??= await this.startUpload(to, deadline)
        await upload(location)
        this.http.stats.uploads++
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
        if (attempt >= retry.attempts || elapsed > retry.budgetMs) {
          if (e instanceof RegistryError) throw e
          throw networkError(
            {
              registry: this.http.registry,
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
        this.http.stats.retries++
        this.http.log(
          `blob upload ${digest} → ${to} failed (${causeOf(e)}); starting it again (attempt ${attempt + 1})`
        )
        if (location) await this.cancelUpload(location, to)
        location = undefined
        await sleep(this.http.backoff(attempt))
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
    const res = await this.auth.send({
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
    await this.http.drain(res)
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
    const { stats } = this.http
    await this.uploadWithRestarts(to, digest, firstLocation, deadline, async location => {
      const src = await this.auth.send({
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
            stats.bytesIn += chunk.length
            stats.bytesOut += chunk.length
            ctl.enqueue(chunk)
          }
        })
      )
      const patch = await this.auth.send({
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
      await this.http.drain(patch)
      if (length !== undefined && moved !== length) throw new Error(`copied ${moved} of ${length} bytes`)
      await this.finishUpload(this.location(patch, to, location), to, digest, deadline)
      stats.blobBytesUploaded += moved
    })
  }
}

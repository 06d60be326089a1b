/**
 * The registry client's transport: one request on Node's fetch with its time limit (or the overall
 * deadline of the blob copy it is part of), response bodies read whole under a size cap, and retries with
 * capped, jittered backoff on dropped connections, 408, 429 (Retry-After) and 5xx within a time budget.
 * Also which URLs a registry may send us to (`remoteUrl`). Credentials are not handled here: auth.ts adds
 * them, for the registry's own origin only.
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
import { apiHost, isLoopback } from './reference.js'

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

/** The transport part of the client's options (RegistryClientOptions adds the credentials). */
export interface HttpOptions {
  /** registry host as in image references: ghcr.io, docker.io, 127.0.0.1:5000 */
  registry: string
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

export interface ClientStats {
  requests: number
  /** body bytes received (manifests, blobs, tokens, errors) */
  bytesIn: number
  /** body bytes sent */
  bytesOut: number
  retries: number
  mounts: number
  uploads: number
  /** blob bytes written into the registry (uploads and streamed copies; 0 when every blob was mounted) */
  blobBytesUploaded: number
}

/** An overall deadline shared by the requests of one blob copy. */
export interface Deadline {
  signal: AbortSignal
  /** the error to throw once it has passed */
  error: () => RegistryProtocolError
}

/** A cap on a response body read whole: `what` is named in the error (e.g. "the manifest ghcr.io/a/b:v1"). */
export interface BodyLimit {
  bytes: number
  what: string
  /** why this limit, e.g. "the distribution spec's limit for manifests" */
  why: string
}

/** One request as the transport sends it (auth.ts's SendOptions add scopes and the accepted statuses). */
export interface RequestOptions {
  /** a streamed request body (never retried by send itself) */
  streamBody?: ReadableStream<Uint8Array>
  method: string
  path: string
  repository?: string
  reference?: string
  headers?: Record<string, string>
  body?: Buffer
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

export const MiB = 1024 * 1024
/** any other body read whole (tag lists, upload answers, the /v2/ ping) */
export const BODY_LIMIT_BYTES = 4 * MiB
/** an error answer is read for its message only: the rest is dropped */
const ERROR_BODY_BYTES = 64 * 1024
export const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504])
export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

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

/** Why a request got no answer, for messages and for telling DNS/TLS failures (not retried) apart. */
export function causeOf(e: unknown): string {
  const err = e as {
    name?: string
    message?: string
    code?: string
    cause?: { code?: string; message?: string }
  }
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return 'timed out'
  return err?.cause?.code ?? err?.code ?? err?.cause?.message ?? err?.message ?? String(e)
}

export class RegistryHttp {
  readonly registry: string
  readonly base: string
  readonly origin: string
  readonly stats: ClientStats = {
    requests: 0,
    bytesIn: 0,
    bytesOut: 0,
    retries: 0,
    mounts: 0,
    uploads: 0,
    blobBytesUploaded: 0
  }
  readonly retry: Required<RetryOptions>
  readonly timeoutMs: number
  readonly blobTimeoutMs: number
  readonly log: (line: string) => void
  readonly userAgent: string

  constructor(opts: HttpOptions) {
    this.registry = opts.registry
    const insecure = opts.insecure ?? isLoopback(opts.registry)
    this.base = `${insecure ? 'http' : 'https'}://${apiHost(opts.registry)}`
    this.origin = new URL(this.base).origin
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
   * A URL the registry hands us (an upload Location, a Link to the next page, the token realm), resolved
   * against the URL it came with: http(s) only, and no plain http from a registry spoken to over https
   * (except to loopback).
   */
  remoteUrl(raw: string, relativeTo: string, header: string, facts: RegistryErrorFacts): string {
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
  deadline(what: string, facts: RegistryErrorFacts): Deadline {
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

  /** The deadline a request runs under: the caller's, else one of its own for a streamed body. */
  deadlineFor(o: RequestOptions, url: string): Deadline | undefined {
    // a streamed body (either way) has no request time limit of its own, only the blob deadline
    return (
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
    )
  }

  backoff(attempt: number): number {
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
  async drain(res: Response): Promise<void> {
    if (res.bodyUsed || !res.body) return
    await res.body.cancel().catch(() => undefined)
  }

  /**
   * Runs one request until it gets an answer that is not worth retrying: network errors, 408/429/5xx are
   * retried with capped, jittered backoff (Retry-After honoured up to a cap) within the attempt and time
   * budget. Returns that answer; throws a mapped error when the budget is spent.
   */
  async fetchRetrying(
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

  /**
   * One request to `url`, retried by fetchRetrying (a streamed body never is), under its time limit or
   * `deadline`. `credentials`, when given, is asked for the Authorization header before every attempt;
   * without it the request goes out without any (another origin).
   */
  request(
    o: RequestOptions,
    url: string,
    facts: RegistryErrorFacts,
    deadline: Deadline | undefined,
    credentials?: () => Promise<string | undefined>
  ): Promise<{ res: Response; attempts: number; elapsed: number }> {
    return this.fetchRetrying(
      facts,
      async () => {
        const authorization = credentials ? await credentials() : undefined
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
        this.log(`${o.method} ${url}${credentials ? '' : ' (another origin: without credentials)'}`)
        return fetch(url, init)
      },
      { noRetry: o.noRetry || !!o.streamBody, buffer: !o.stream, limit: o.limit, deadline }
    )
  }

  /** The mapped RegistryError for an answer the caller does not take, with the registry's message from its body. */
  async failure(
    o: RequestOptions,
    res: Response,
    facts: RegistryErrorFacts,
    status: number,
    attempts: number,
    elapsed: number
  ): Promise<RegistryError> {
    const text =
      o.method === 'HEAD'
        ? ''
        : o.stream && res.body
          ? // a streamed answer's error body: its first 64 KiB, for the message
            (await this.readCapped(res, ERROR_BODY_BYTES).catch(() => Buffer.alloc(0))).toString('utf8')
          : await res.text().catch(() => '')
    return httpError({ ...facts, ...parseErrorBody(text), status }, attempts, elapsed)
  }
}

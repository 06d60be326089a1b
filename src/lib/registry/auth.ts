/**
 * Authentication for the registry client, and the one way every request goes out (`send`): the `/v2/`
 * challenge, followed once per client (anonymous, Basic, or the Bearer realm/service/scope token flow of
 * ghcr.io and Docker Hub), one token for every repository in play, cached per scope set until shortly
 * before it expires; a 401 naming a scope adds it and asks again once.
 *
 * Which credential goes where: Basic or Bearer only to the registry's own origin; Basic credentials also
 * to the token realm, for the token request alone. A request to another origin (an upload Location or a
 * Link on a storage host, a CDN, anyone) goes without them, and a 401 from there does not change scopes.
 */
import {
  httpError,
  parseErrorBody,
  quote,
  RegistryError,
  RegistryProtocolError,
  type RegistryErrorFacts
} from './errors.js'
import { MiB, type RegistryHttp, type RequestOptions } from './http.js'
import { isRepository } from './reference.js'

export type Action = 'pull' | 'push'

export interface SendOptions extends RequestOptions {
  /** the repository's scopes this request needs (declared before it goes out) */
  actions?: Action[]
  /** statuses returned to the caller instead of thrown */
  ok: number[]
  /** statuses returned too (e.g. 404 for HEAD) */
  pass?: number[]
}

interface Challenge {
  scheme: 'none' | 'basic' | 'bearer'
  realm?: string
  service?: string
}

export const TOKEN_LIMIT_BYTES = 1 * MiB

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

export class RegistryAuth {
  private readonly username?: string
  private readonly password?: string
  private challenge?: Promise<Challenge>
  private readonly scopes = new Map<string, Set<Action>>()
  private readonly tokens = new Map<string, Promise<{ token: string; expires: number }>>()

  constructor(
    private readonly http: RegistryHttp,
    username?: string,
    password?: string
  ) {
    this.username = username || undefined
    this.password = password || undefined
  }

  /** Adds actions on a repository to the scopes every later token is asked for. */
  authorize(repository: string, actions: Action[]): void {
    const set = this.scopes.get(repository) ?? new Set<Action>()
    for (const a of actions) set.add(a)
    this.scopes.set(repository, set)
  }

  /** One request with auth and retries. Returns responses in `ok`/`pass`; throws a mapped RegistryError otherwise. */
  async send(o: SendOptions): Promise<Response> {
    if (o.repository && o.actions) this.authorize(o.repository, o.actions)
    const url = o.url ?? this.http.base + o.path
    // credentials are for the registry itself: another origin (an upload Location or a Link on a storage
    // host, a CDN, anyone) gets the request without them
    const own = new URL(url).origin === this.http.origin
    const deadline = this.http.deadlineFor(o, url)
    const facts: RegistryErrorFacts = {
      registry: this.http.registry,
      method: o.method,
      path: o.path,
      repository: o.repository,
      reference: o.reference,
      anonymous: !this.username && !this.password
    }
    for (let round = 1; ; round++) {
      const { res, attempts, elapsed } = await this.http.request(
        o,
        url,
        facts,
        deadline,
        own ? () => this.authorization(facts) : undefined
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
      // a valid token without the rights asked for is a 403 in substance (ghcr.io, distribution)
      const status = res.status === 401 && challenge?.params.error === 'insufficient_scope' ? 403 : res.status
      throw await this.http.failure(o, res, facts, status, attempts, elapsed)
    }
  }

  private async ping(): Promise<Challenge> {
    const { registry, base } = this.http
    const facts: RegistryErrorFacts = { registry, method: 'GET', path: '/v2/' }
    const { res, attempts, elapsed } = await this.http.fetchRetrying(facts, () =>
      fetch(`${base}/v2/`, {
        headers: { 'user-agent': this.http.userAgent },
        signal: AbortSignal.timeout(this.http.timeoutMs)
      })
    )
    const text = await res.text().catch(() => '')
    if (res.status === 200) return { scheme: 'none' }
    if (res.status === 401) {
      const c = parseChallenge(res.headers.get('www-authenticate'))
      if (c?.scheme === 'bearer' && c.params.realm) {
        const realm = this.http.remoteUrl(c.params.realm, `${base}/v2/`, 'token realm', {
          ...facts,
          status: 401
        })
        return { scheme: 'bearer', realm, service: c.params.service }
      }
      if (c?.scheme === 'basic') return { scheme: 'basic' }
      throw new RegistryError(
        `${registry} asks for an authentication scheme shipline does not speak ('${res.headers.get('www-authenticate')}').`,
        {
          ...facts,
          status: 401
        }
      )
    }
    if (res.status === 404) {
      throw new RegistryError(
        `${registry} does not serve the registry API at ${base}/v2/ (404): check the registry host.`,
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

  /** The Authorization header for a request to the registry's own origin (undefined: anonymous). */
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
    await this.http.drain(res)
    for (const scope of (c.params.scope ?? '').split(' ')) {
      const m = /^repository:(.+):([a-z,*]+)$/.exec(scope)
      if (m && isRepository(m[1]))
        this.authorize(
          m[1],
          m[2].split(',').filter((a): a is Action => a === 'pull' || a === 'push')
        )
    }
    this.tokens.delete(this.scopeList().join(' '))
    this.http.log(`401 on ${facts.method} ${facts.path}: asking for a new token`)
    return true
  }

  private async fetchToken(
    challenge: Challenge,
    scopes: string[],
    facts: RegistryErrorFacts
  ): Promise<{ token: string; expires: number }> {
    const { registry } = this.http
    const url = new URL(challenge.realm!)
    if (challenge.service) url.searchParams.set('service', challenge.service)
    for (const s of scopes) url.searchParams.append('scope', s)
    const headers: Record<string, string> = { 'user-agent': this.http.userAgent }
    const basic = this.basic()
    if (basic) headers.authorization = basic
    this.http.log(`token: GET ${url.origin}${url.pathname} scopes ${scopes.join(' ') || '(none)'}`)
    const tokenFacts = { ...facts, method: 'GET', path: `${url.pathname} (token service ${url.host})` }
    const { res, attempts, elapsed } = await this.http.fetchRetrying(
      tokenFacts,
      () => fetch(url, { headers, signal: AbortSignal.timeout(this.http.timeoutMs) }),
      {
        limit: {
          bytes: TOKEN_LIMIT_BYTES,
          what: `the token answer of ${url.origin} (the token service of ${registry})`,
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
          `the token service of ${registry} (${url.origin}) answered with something that is not JSON (${quote(text, 60)}).`,
          { ...tokenFacts, status: 200 }
        )
      }
      const token = body?.token ?? body?.access_token
      if (!token)
        throw new RegistryError(`the token service of ${registry} answered without a token.`, {
          ...facts,
          status: 200
        })
      // the token goes into an Authorization header: visible ASCII only (token68 and JWTs are)
      if (typeof token !== 'string' || !/^[\x21-\x7e]{1,65536}$/.test(token))
        throw new RegistryProtocolError(
          `the token service of ${registry} (${url.origin}) answered with a token that cannot go in an Authorization header (not visible ASCII); refusing it.`,
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

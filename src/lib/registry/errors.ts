/** Registry failures mapped to one-line fixes (UserError), keeping the HTTP facts for callers and logs. */
import { UserError } from '../errors.js'

export interface RegistryErrorFacts {
  registry: string
  method: string
  /** path of the request, e.g. /v2/acme/app/manifests/prod */
  path: string
  status?: number
  /** first OCI error code of the body, e.g. MANIFEST_UNKNOWN */
  code?: string
  /** the error body's message, if any */
  detail?: string
  repository?: string
  reference?: string
  /** the client had no credentials */
  anonymous?: boolean
}

export class RegistryError extends UserError {
  readonly status?: number
  readonly code?: string
  readonly facts: RegistryErrorFacts
  constructor(message: string, facts: RegistryErrorFacts, details?: string) {
    super(message, details ?? describe(facts))
    this.facts = facts
    this.status = facts.status
    this.code = facts.code
  }
}

/**
 * The registry's answer breaks the protocol or one of the client's limits (a bad digest, an oversized body,
 * a Location on another scheme, a blob copy past its deadline): asking again would not help, so it is
 * never retried.
 */
export class RegistryProtocolError extends RegistryError {}

/** A remote value quoted in a message: JSON-quoted (no control characters) and cut to `max` characters. */
export function quote(value: unknown, max = 120): string {
  const s = typeof value === 'string' ? value : value === undefined ? 'undefined' : JSON.stringify(value)
  const cut = s.length > max ? `${s.slice(0, max)}…` : s
  return JSON.stringify(cut)
}

function describe(f: RegistryErrorFacts): string {
  return `${f.method} ${f.registry}${f.path} → ${f.status ?? 'no answer'}${f.code ? ` ${f.code}` : ''}${f.detail ? `: ${f.detail}` : ''}`
}

const GHCR_FIX =
  "give this repository Write access in the package's Manage Actions access settings (and 'packages: write' in the workflow's permissions)"

function isGhcr(registry: string): boolean {
  return registry === 'ghcr.io' || registry.endsWith('.ghcr.io')
}

/** Reads the first `{errors:[{code,message}]}` entry of a registry error body, if it is one. */
export function parseErrorBody(text: string): { code?: string; detail?: string } {
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string; detail?: unknown }[] }
    const e = body.errors?.[0]
    if (e) return { code: e.code, detail: e.message }
  } catch {
    /* not JSON */
  }
  const t = text.trim()
  return t ? { detail: t.slice(0, 200) } : {}
}

/** The UserError for a final (not retried, or out of retries) HTTP answer. */
export function httpError(f: RegistryErrorFacts, attempts = 1, elapsedMs = 0): RegistryError {
  const where = f.repository ? `${f.registry}/${f.repository}` : f.registry
  const what = f.reference ? `${where}${f.reference.startsWith('sha256:') ? '@' : ':'}${f.reference}` : where
  const status = f.status ?? 0
  const isPush = f.method === 'PUT' || f.method === 'POST' || f.method === 'PATCH'
  let msg: string
  if ((status === 401 || status === 403) && f.anonymous) {
    msg = `${f.registry} needs credentials for ${where} (${status}): set registry-username and registry-password.`
  } else if ((status === 401 || status === 403) && isGhcr(f.registry)) {
    msg = `ghcr.io refused ${isPush ? 'to write to' : 'access to'} ${where} (${status}): ${GHCR_FIX}.`
  } else if (status === 401) {
    msg = `${f.registry} refused the credentials (401) for ${where}: check registry-username and registry-password.`
  } else if (status === 403) {
    msg = `${f.registry} denied ${isPush ? 'push' : 'pull'} on ${where} (403): use credentials with ${isPush ? 'push' : 'pull'} rights on that repository.`
  } else if (
    status === 404 &&
    (f.code === 'NAME_UNKNOWN' || (!f.reference && f.path.includes('/tags/list')))
  ) {
    msg = `repository ${where} does not exist on ${f.registry} (404): check the image name, or push it first.`
  } else if (status === 404 && f.path.includes('/manifests/')) {
    msg = `${what} was not found (404): check that the tag exists (push it first) and that the image name is right.`
  } else if (status === 404 && f.path.includes('/blobs/')) {
    msg = `blob ${f.reference ?? ''} is missing in ${where} (404): the source image is incomplete; push it again.`
  } else if (status === 429) {
    msg = `${f.registry} kept rate-limiting (429) ${f.method} ${f.path} after ${attempts} attempts over ${Math.round(elapsedMs / 1000)} s: wait and run the job again.`
  } else if (status >= 500) {
    msg = `${f.registry} answered ${status} to ${f.method} ${f.path} after ${attempts} attempts over ${Math.round(elapsedMs / 1000)} s: the registry is unavailable; run the job again later.`
  } else if (status === 400 && f.code === 'TAG_INVALID') {
    msg = `${f.registry} refused the tag of ${what} (400 TAG_INVALID): use a valid tag.`
  } else if (status === 400 && f.code === 'MANIFEST_BLOB_UNKNOWN') {
    msg = `${f.registry} refused the manifest for ${what}: a blob it references is missing in ${where} (MANIFEST_BLOB_UNKNOWN).`
  } else {
    msg = `${f.registry} answered ${status}${f.code ? ` ${f.code}` : ''} to ${f.method} ${f.path}${f.detail ? `: ${f.detail}` : ''}.`
  }
  return new RegistryError(msg, f)
}

/** The UserError for a request that never got an answer (connection refused, reset, DNS, timeout). */
export function networkError(
  f: RegistryErrorFacts,
  cause: string,
  attempts: number,
  elapsedMs: number
): RegistryError {
  if (/ENOTFOUND|EAI_AGAIN/.test(cause)) {
    return new RegistryError(
      `cannot resolve the registry host ${f.registry} (${cause}): check the registry name in image / registry.`,
      f
    )
  }
  if (/certificate|CERT|SSL|TLS/i.test(cause)) {
    return new RegistryError(
      `TLS with ${f.registry} failed (${cause}): the registry needs a valid certificate (only loopback registries may use http).`,
      f
    )
  }
  return new RegistryError(
    `no answer from ${f.registry} to ${f.method} ${f.path} after ${attempts} attempts over ${Math.round(elapsedMs / 1000)} s (${cause}): check that the registry is reachable, then run the job again.`,
    f
  )
}

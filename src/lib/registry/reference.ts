/**
 * Image references as Docker and the distribution spec read them:
 * `[registry[:port]/]path/name[:tag][@sha256:hex]`, with docker.io (and `library/`) as the defaults.
 */
import { UserError } from '../errors.js'

export interface ImageReference {
  /** registry host as users write it: `ghcr.io`, `127.0.0.1:5000`, `docker.io` */
  registry: string
  /** repository path inside the registry: `acme/shop/api`, `library/nginx` */
  repository: string
  tag?: string
  digest?: string
}

const DEFAULT_REGISTRY = 'docker.io'

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/
export const FULL_SHA = /^[0-9a-f]{40}$/

export function isDigest(s: string): boolean {
  return DIGEST.test(s)
}

/** A repository path as the distribution spec's grammar has it (lowercase components, at most 255 characters). */
export function isRepository(s: string): boolean {
  return s.length > 0 && s.length <= 255 && s.split('/').every(c => COMPONENT.test(c))
}

export function isTag(s: string): boolean {
  return TAG.test(s)
}

/** A tag that is a full 40-hex commit SHA: immutable by the suite's rule. */
export function isShaTag(s: string): boolean {
  return FULL_SHA.test(s)
}

/** Throws a UserError saying what a valid tag looks like. `what` names the input, e.g. "to-tags". */
export function checkTag(tag: string, what = 'tag'): string {
  if (!TAG.test(tag)) {
    throw new UserError(
      `${what}: '${tag}' is not a valid tag; tags are 1-128 characters of letters, digits, '_', '.' and '-', and do not start with '.' or '-'.`
    )
  }
  return tag
}

function looksLikeDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost'
}

/** True when the reference starts with a registry host (`ghcr.io/…`, `127.0.0.1:5000/…`, `localhost/…`). */
export function namesRegistry(ref: string): boolean {
  const parts = ref.trim().split('/')
  return parts.length > 1 && looksLikeDomain(parts[0])
}

export interface ParseOptions {
  /** lowercase the registry and repository (image names must be lowercase) instead of refusing them */
  lowercase?: boolean
  /** what the reference is, for messages (e.g. "image") */
  what?: string
}

/**
 * Parses an image reference. Uppercase repository names are refused with the lowercase spelling as the fix
 * (or lowercased with `{ lowercase: true }`); bad tags and digests are refused with the grammar.
 */
export function parseImageReference(ref: string, opts: ParseOptions = {}): ImageReference {
  const what = opts.what ?? 'image'
  const input = ref.trim()
  if (!input) throw new UserError(`${what} is empty: give an image such as ghcr.io/owner/app.`)
  if (/\s/.test(input) || input.includes('://')) {
    throw new UserError(
      `${what}: '${input}' is not an image reference; write it as registry/path/name[:tag], without a scheme.`
    )
  }
  let rest = input
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) {
      throw new UserError(
        `${what}: '${digest}' is not a valid digest; write sha256: followed by 64 lowercase hex characters.`
      )
    }
  }
  let tag: string | undefined
  const slash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > slash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    checkTag(tag, what)
  }
  const parts = rest.split('/')
  let registry = DEFAULT_REGISTRY
  if (parts.length > 1 && looksLikeDomain(parts[0])) {
    registry = parts.shift()!
    if (!DOMAIN.test(registry)) throw new UserError(`${what}: '${registry}' is not a valid registry host.`)
  }
  let repository = parts.join('/')
  if (opts.lowercase) {
    registry = registry.toLowerCase()
    repository = repository.toLowerCase()
  }
  if (repository !== repository.toLowerCase() || registry !== registry.toLowerCase()) {
    const fixed = formatReference({
      registry: registry.toLowerCase(),
      repository: repository.toLowerCase(),
      tag,
      digest
    })
    throw new UserError(
      `${what}: '${input}' has uppercase letters; repository names must be lowercase: use '${fixed}'.`
    )
  }
  for (const c of repository.split('/')) {
    if (!COMPONENT.test(c)) {
      throw new UserError(
        `${what}: '${input}' is not a valid repository name; each path component is lowercase letters and digits, separated by '.', '_', '__' or '-'.`
      )
    }
  }
  if (repository.length > 255) throw new UserError(`${what}: repository name is longer than 255 characters.`)
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DEFAULT_REGISTRY
  if (registry === DEFAULT_REGISTRY && !repository.includes('/')) repository = `library/${repository}`
  return {
    registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {})
  }
}

/** registry/repository[:tag][@digest]; the docker.io `library/` prefix is kept (it is unambiguous). */
export function formatReference(r: ImageReference): string {
  let s = `${r.registry}/${r.repository}`
  if (r.tag) s += `:${r.tag}`
  if (r.digest) s += `@${r.digest}`
  return s
}

/** The host to talk HTTP to: Docker Hub's API lives on registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? 'registry-1.docker.io' : registry
}

/** Loopback registries speak plain http (as dockerd allows by default); everything else https. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

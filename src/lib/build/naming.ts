/**
 * The image repository build-push pushes to: `image` when given, else `ghcr.io/<owner>/<repo>[/<service>]`,
 * always lowercased (registries accept lowercase repository names only; the caller tells the user when
 * the name changed), and validated against the distribution grammar before Docker sees it.
 */
import { UserError } from '../errors.js'

/** One path component of a repository name (distribution reference grammar). */
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
/** A registry host: a domain or IP with an optional port, or bracketed IPv6. */
const HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d+)?$/

export interface ImageName {
  /** the repository as pushed: `registry/path` (lowercase) */
  image: string
  /** the registry host (`docker.io` when the name has none) */
  registry: string
  /** the repository path inside the registry */
  path: string
  /** the name as the user wrote it, when lowercasing changed it */
  lowercasedFrom?: string
}

function hasHost(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')
}

/** The default image: `ghcr.io/<owner>/<repo>` plus `/<service>`. */
export function defaultImage(repository: string | undefined, service: string): string {
  if (!repository || !repository.includes('/')) {
    throw new UserError("No 'image' given and GITHUB_REPOSITORY is not set. Pass 'image: ghcr.io/<owner>/<name>'.")
  }
  const s = service.trim().replace(/^\/+|\/+$/g, '')
  return `ghcr.io/${repository}${s ? `/${s}` : ''}`
}

/**
 * Lowercases and validates an image repository name (no tag, no digest). `input` names where the name
 * came from, for the error message.
 */
export function normalizeImage(raw: string, input = 'image'): ImageName {
  const given = raw.trim()
  if (given === '') throw new UserError(`Input '${input}' is empty. Pass a repository such as 'ghcr.io/<owner>/<name>'.`)
  if (given.includes('@')) {
    throw new UserError(`Input '${input}' must be a repository without a digest, got '${given}'. Drop the '@sha256:…' part.`)
  }
  const lower = given.toLowerCase()
  const parts = lower.split('/')
  const registry = parts.length > 1 && hasHost(parts[0]) ? parts[0] : 'docker.io'
  const pathParts = registry === 'docker.io' && !(parts.length > 1 && parts[0] === 'docker.io') ? parts : parts.slice(1)
  const last = pathParts[pathParts.length - 1] ?? ''
  if (last.includes(':')) {
    throw new UserError(
      `Input '${input}' must be a repository without a tag, got '${given}'. Put tags in 'tags' (the commit and stage tags are added for you).`
    )
  }
  if (registry !== 'docker.io' && !HOST.test(registry)) {
    throw new UserError(`Input '${input}': '${parts[0]}' is not a valid registry host. Write it as host[:port]/path.`)
  }
  if (pathParts.length === 0 || pathParts.some(p => !COMPONENT.test(p))) {
    const bad = pathParts.find(p => !COMPONENT.test(p)) ?? ''
    throw new UserError(
      `Input '${input}': '${given}' is not a valid image repository ('${bad}' is not a valid path component). Use lowercase letters, digits and single separators (. _ -) between them, e.g. 'ghcr.io/owner/app'.`
    )
  }
  const path = pathParts.join('/')
  const image = registry === 'docker.io' && parts[0] !== 'docker.io' ? path : `${registry}/${path}`
  if (image.length > 255) throw new UserError(`Input '${input}': the repository name is longer than 255 characters.`)
  return { image, registry, path, ...(lower !== given ? { lowercasedFrom: given } : {}) }
}

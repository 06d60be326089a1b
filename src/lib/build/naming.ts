/**
 * The image repository build-push pushes to: `image` when given, else `ghcr.io/<owner>/<repo>[/<service>]`,
 * always lowercased (registries accept lowercase repository names only; the caller tells the user when
 * the name changed), and validated by the registry client's reference parser before Docker sees it.
 */
import { UserError } from '../errors.js'
import { parseImageReference } from '../registry/reference.js'

export interface ImageName {
  /** the repository as pushed and output: the user's spelling, lowercased (`ghcr.io/o/app`, `user/app`) */
  image: string
  /** the registry host (`docker.io` when the name has none) */
  registry: string
  /** the repository path inside the registry (`o/app`; `library/app` for a one-part Docker Hub name) */
  path: string
  /** the name as the user wrote it, when lowercasing changed it */
  lowercasedFrom?: string
}

/** The default image: `ghcr.io/<owner>/<repo>` plus `/<service>`. */
export function defaultImage(repository: string | undefined, service: string): string {
  if (!repository || !repository.includes('/')) {
    throw new UserError("No 'image' given and GITHUB_REPOSITORY is not set. Pass 'image: ghcr.io/<owner>/<name>'.")
  }
  const s = service.trim().replace(/^\/+|\/+$/g, '')
  return `ghcr.io/${repository}${s ? `/${s}` : ''}`
}

/** Lowercases and validates an image repository name (no tag, no digest). */
export function normalizeImage(raw: string, input = 'image'): ImageName {
  const given = raw.trim()
  if (given.includes('@')) {
    throw new UserError(`Input '${input}' must be a repository without a digest, got '${given}'. Drop the '@sha256:…' part.`)
  }
  const ref = parseImageReference(given, { lowercase: true, what: `Input '${input}'` })
  if (ref.tag !== undefined) {
    throw new UserError(
      `Input '${input}' must be a repository without a tag, got '${given}'. Put tags in 'tags' (the commit and stage tags are added for you).`
    )
  }
  const image = given.toLowerCase()
  return { image, registry: ref.registry, path: ref.repository, ...(image !== given ? { lowercasedFrom: given } : {}) }
}

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'])

/**
 * The registry to log in to: the `registry` input (scheme, path and case dropped; Docker Hub's aliases are
 * docker.io) or the image's host. Returns a warning when it is not the registry the image is pushed to.
 */
export function loginRegistry(input: string, image: ImageName): { registry: string; warning?: string } {
  const raw = input.trim()
  if (!raw) return { registry: image.registry }
  const host = raw.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase()
  const registry = DOCKER_HUB.has(host) ? 'docker.io' : host
  if (registry === image.registry) return { registry }
  return {
    registry,
    warning: `'registry' is ${registry} but the image is pushed to ${image.registry}: the login is for ${registry}. Leave 'registry' empty to log in where the image goes.`
  }
}

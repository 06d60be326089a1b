/**
 * promote's repository inputs (`image`, `to-image`), checked before anything talks to a registry: a bare
 * repository (no tag, no digest), lowercased, on the registry named in `registry` when one is.
 */
import { UserError } from '../errors.js'
import { isDigest, namesRegistry, parseImageReference, type ImageReference } from '../registry/reference.js'

export interface PromoteRepository {
  ref: ImageReference
  /** set when the name had to be lowercased: a line for the log (a notice) */
  notice?: string
}

/** `raw` as a repository for promote; errors name `input`; `registry` ('' = from the name) prefixes bare names. */
function promoteRepository(input: string, raw: string, registry: string): PromoteRepository {
  const withRegistry = registry && !namesRegistry(raw) ? `${registry}/${raw}` : raw
  const ref = parseImageReference(withRegistry, { lowercase: true, what: input })
  if (ref.tag || ref.digest) {
    throw new UserError(
      `Input '${input}' must be a repository without a tag or digest ('${raw}'); put the tag in 'from' or 'to-tags'.`
    )
  }
  const notice =
    withRegistry.toLowerCase() !== withRegistry
      ? `${input}: '${raw}' lowercased to '${ref.registry}/${ref.repository}' (image names must be lowercase).`
      : undefined
  if (registry && ref.registry !== registry.toLowerCase()) {
    throw new UserError(
      `Input '${input}' (${ref.registry}) is on another registry than 'registry' (${registry}): promote works inside one registry.`
    )
  }
  return { ref, notice }
}

/** The source and target repositories of a promote, from the raw `image`, `to-image` and `registry` inputs. */
export function promoteRepositories(raw: { image: string; toImage: string; registry: string }): {
  source: ImageReference
  target: ImageReference
  notices: string[]
} {
  if (!raw.image)
    throw new UserError("Input 'image' is required: the source repository, e.g. 'image: ghcr.io/acme/app'.")
  const src = promoteRepository('image', raw.image, raw.registry)
  const dst = promoteRepository(
    'to-image',
    raw.toImage || `${src.ref.registry}/${src.ref.repository}`,
    raw.registry || src.ref.registry
  )
  return {
    source: src.ref,
    target: dst.ref,
    notices: [src.notice, dst.notice].filter((n): n is string => !!n)
  }
}

/**
 * The `merge` input's entries as images to merge: `sha256:…` (in `source`, the `image` input) or
 * `[registry/]repository@sha256:…` on the same registry (a name without a registry is taken on it).
 */
export function mergeChildren(
  entries: string[],
  source: ImageReference,
  registry: string
): { repository: string; digest: string }[] {
  const host = (registry || source.registry).toLowerCase()
  return entries.map(raw => {
    if (raw.startsWith('sha256:') || raw.startsWith('sha512:')) {
      if (!isDigest(raw))
        throw new UserError(
          `merge: '${raw}' is not a valid digest; write sha256: followed by 64 lowercase hex characters.`
        )
      return { repository: source.repository, digest: raw }
    }
    if (!raw.includes('@'))
      throw new UserError(
        `merge: '${raw}' is not a digest; give one 'image@sha256:…' or 'sha256:…' per line (build-push's 'digest' output of each platform).`
      )
    const ref = parseImageReference(namesRegistry(raw) ? raw : `${host}/${raw}`, {
      lowercase: true,
      what: 'merge'
    })
    if (ref.tag || !ref.digest)
      throw new UserError(
        `merge: '${raw}' names a tag; give the image by digest alone ('image@sha256:…'), as build-push's 'digest' output gives it.`
      )
    if (ref.registry !== host)
      throw new UserError(
        `merge: '${raw}' is on another registry than ${host}: merge works inside one registry; push every platform's image to ${host}.`
      )
    return { repository: ref.repository, digest: ref.digest }
  })
}

/** promote's inputs, read once and typed; the repositories checked by src/lib/promote/repository.ts. */
import { list, secret, str } from '../action/inputs.js'
import { UserError } from '../lib/errors.js'
import { mergeChildren, promoteRepositories } from '../lib/promote/repository.js'
import type { MergeChild } from '../lib/registry/merge.js'
import { isShaTag, type ImageReference } from '../lib/registry/reference.js'

export interface PromoteInputs {
  /** `image` (with `registry`), lowercased, no tag or digest */
  source: ImageReference
  /** `to-image` (default `image`), on the same registry */
  target: ImageReference
  /** `from`: tag, full SHA tag or digest (checked by promote()); empty with `merge` */
  from: string
  /** `to-tags` */
  toTags: string[]
  /** `merge`: the single-platform images to make one index of (empty: a plain promote) */
  merge: MergeChild[]
  /** `sha`: the full commit SHA the merged index is tagged with (merge only; empty: none) */
  sha: string
  username: string
  /** `registry-password` (masked) */
  password: string
  /** lines for core.notice (names that were lowercased) */
  notices: string[]
}

export function getInputs(): PromoteInputs {
  // the secret first: masked before any error message or notice can be written
  const password = secret('registry-password')
  const username = str('registry-username')
  const registry = str('registry')
  const repos = promoteRepositories({ image: str('image'), toImage: str('to-image'), registry })
  const from = str('from')
  const sha = str('sha')
  const entries = list('merge')
  if (entries.length > 0 && from)
    throw new UserError(
      "Inputs 'merge' and 'from' exclude each other: 'merge' makes a new index of its digests; drop 'from' (tag the index with 'sha' and 'to-tags')."
    )
  if (sha && entries.length === 0)
    throw new UserError(
      "Input 'sha' tags the index 'merge' makes; without 'merge', put the commit tag in 'from' or 'to-tags'."
    )
  if (sha && !isShaTag(sha))
    throw new UserError(
      `sha: '${sha}' is not a full commit SHA; give the 40 lowercase hex characters (\${{ github.sha }}).`
    )
  const merge = mergeChildren(entries, repos.source, registry)
  return { ...repos, username, password, from, toTags: list('to-tags'), merge, sha }
}

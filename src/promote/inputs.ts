/** promote's inputs, read once and typed; the repositories checked by src/lib/promote/repository.ts. */
import { list, secret, str } from '../action/inputs.js'
import { promoteRepositories } from '../lib/promote/repository.js'
import type { ImageReference } from '../lib/registry/reference.js'

export interface PromoteInputs {
  /** `image` (with `registry`), lowercased, no tag or digest */
  source: ImageReference
  /** `to-image` (default `image`), on the same registry */
  target: ImageReference
  /** `from`: tag, full SHA tag or digest (checked by promote()) */
  from: string
  /** `to-tags` */
  toTags: string[]
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
  const repos = promoteRepositories({
    image: str('image'),
    toImage: str('to-image'),
    registry: str('registry')
  })
  return { ...repos, username, password, from: str('from'), toTags: list('to-tags') }
}

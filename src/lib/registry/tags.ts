/**
 * Putting one manifest under target tags, the way promote and merge both do it: read where the tags point
 * first, refuse to move a commit SHA tag, PUT the exact bytes under the tags that differ, then read every
 * tag back: each must answer the digest.
 */
import { UserError } from '../errors.js'
import type { Manifest, RegistryClient } from './client.js'
import { mapLimit } from './copy.js'
import { isShaTag } from './reference.js'

export interface TargetResult {
  tag: string
  ref: string
  before: string | null
  after: string
  action: 'created' | 'moved' | 'unchanged'
}

/** Where each tag of `repository` points now (null: no such tag). */
export async function readTags(
  client: RegistryClient,
  repository: string,
  tags: string[]
): Promise<(string | null)[]> {
  return mapLimit(tags, 4, async tag => (await client.headManifest(repository, tag))?.digest ?? null)
}

/** The tags that need a write; a commit SHA tag already on another digest is refused (nothing written). */
export function pendingTags(
  registry: string,
  repository: string,
  tags: string[],
  before: (string | null)[],
  digest: string
): string[] {
  for (const [i, tag] of tags.entries()) {
    if (isShaTag(tag) && before[i] && before[i] !== digest) {
      throw new UserError(
        `${registry}/${repository}:${tag} is a commit SHA tag and already points at ${before[i]}; SHA tags are immutable, so it is not moved to ${digest}: promote to a moving tag (e.g. prod) instead.`
      )
    }
  }
  return tags.filter((_, i) => before[i] !== digest)
}

/** PUT `m` under each pending tag. */
export async function putTags(
  client: RegistryClient,
  registry: string,
  repository: string,
  pending: string[],
  m: Manifest,
  log: (line: string) => void
): Promise<void> {
  for (const tag of pending) {
    await client.putManifest(repository, tag, m.bytes, m.mediaType)
    log(`${registry}/${repository}:${tag} → ${m.digest}`)
  }
}

/** Every tag must answer `digest` now; returns one result per tag. */
export async function verifyTags(
  client: RegistryClient,
  registry: string,
  repository: string,
  tags: string[],
  before: (string | null)[],
  digest: string
): Promise<TargetResult[]> {
  const after = await readTags(client, repository, tags)
  const wrong = tags.map((tag, i) => ({ tag, got: after[i] })).filter(t => t.got !== digest)
  if (wrong.length > 0) {
    const list = wrong.map(w => `${w.tag} → ${w.got ?? 'missing'}`).join(', ')
    throw new UserError(
      `after promoting, ${registry}/${repository} does not answer ${digest} for ${list}; another job may be moving the same tags: run promote again.`
    )
  }
  return tags.map((tag, i) => ({
    tag,
    ref: `${registry}/${repository}:${tag}`,
    before: before[i],
    after: digest,
    action: before[i] === digest ? 'unchanged' : before[i] ? 'moved' : 'created'
  }))
}

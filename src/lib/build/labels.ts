/**
 * The OCI annotations build-push puts on every image (`org.opencontainers.image.source`, `.revision`,
 * `.created`), merged with the user's `labels` (the user's win).
 */
import { UserError } from '../errors.js'

export interface LabelSource {
  serverUrl?: string
  repository?: string
  sha: string
  /** SOURCE_DATE_EPOCH, for reproducible builds; else `now` */
  sourceDateEpoch?: string
  now?: Date
}

/** The `created` time: SOURCE_DATE_EPOCH (seconds since the epoch) when set, else now; ISO 8601 UTC. */
export function createdTime(sourceDateEpoch: string | undefined, now = new Date()): string {
  const raw = sourceDateEpoch?.trim()
  if (!raw) return now.toISOString().replace(/\.\d{3}Z$/, 'Z')
  if (!/^\d+$/.test(raw)) {
    throw new UserError(`SOURCE_DATE_EPOCH must be whole seconds since 1970-01-01, got '${raw}'. Set it to e.g. $(git log -1 --format=%ct).`)
  }
  return new Date(Number(raw) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

export function ociLabels(src: LabelSource, user: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>()
  if (src.repository) out.set('org.opencontainers.image.source', `${(src.serverUrl || 'https://github.com').replace(/\/+$/, '')}/${src.repository}`)
  out.set('org.opencontainers.image.revision', src.sha)
  out.set('org.opencontainers.image.created', createdTime(src.sourceDateEpoch, src.now))
  for (const [k, v] of user) out.set(k, v)
  return out
}

/**
 * Checks on what goes into a request path and on what the registry says back: repository names,
 * references and digests by their grammar before they are used in a URL, the Docker-Content-Digest of an
 * answer, and every descriptor of a manifest. A failed check is a RegistryProtocolError (never retried).
 * `registry` is the registry host as the client was given it, named in every message.
 */
import { quote, RegistryProtocolError, type RegistryErrorFacts } from './errors.js'
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from './media.js'
import { isDigest, isRepository, isTag } from './reference.js'

export const KNOWN_MANIFEST_TYPES = new Set([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])
const DIGEST_GRAMMAR = 'sha256: and 64 lowercase hex characters, or sha512: and 128'

/** `registry/repository:tag` or `registry/repository@digest`, for messages. */
export function refName(registry: string, repository: string, reference: string): string {
  return `${registry}/${repository}${isDigest(reference) ? '@' : ':'}${reference}`
}

export function blobFacts(
  registry: string,
  method: string,
  repository: string,
  digest: string
): RegistryErrorFacts {
  return {
    registry,
    method,
    path: `/v2/${repository}/blobs/${digest}`,
    repository,
    reference: digest
  }
}

/** A repository name goes into URL paths: it must be one by the distribution grammar. */
export function checkRepository(registry: string, method: string, repository: string, path: string): void {
  if (!isRepository(repository)) {
    throw new RegistryProtocolError(
      `${registry}: ${quote(repository)} is not a repository name (lowercase path components of letters and digits, separated by '.', '_', '__' or '-'); refusing to use it in a request.`,
      { registry, method, path, repository }
    )
  }
}

/** `/v2/<repository>/manifests/<reference>`, once both are known to be safe in a URL path. */
export function manifestPath(
  registry: string,
  method: string,
  repository: string,
  reference: string
): string {
  const path = `/v2/${repository}/manifests/${reference}`
  checkRepository(registry, method, repository, path)
  if (!isTag(reference) && !isDigest(reference)) {
    throw new RegistryProtocolError(
      `${registry}/${repository}: ${quote(reference)} is neither a tag nor a digest (${DIGEST_GRAMMAR}); refusing to use it in a request.`,
      { registry, method, path, repository, reference }
    )
  }
  return path
}

export function checkBlobArgs(registry: string, method: string, repository: string, digest: string): void {
  checkRepository(registry, method, repository, `/v2/${repository}/blobs/`)
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new RegistryProtocolError(
      `${registry}/${repository}: the blob digest ${quote(digest)} is not a digest (${DIGEST_GRAMMAR}); refusing to use it in a request.`,
      { registry, method, path: `/v2/${repository}/blobs/`, repository }
    )
  }
}

/** The Docker-Content-Digest of an answer: undefined when absent; a clear error when it is not a digest. */
export function remoteDigest(registry: string, res: Response, facts: RegistryErrorFacts): string | undefined {
  const header = res.headers.get('docker-content-digest')?.trim()
  if (!header) return undefined
  if (!isDigest(header)) {
    throw new RegistryProtocolError(
      `${registry}/${facts.repository ?? ''}: the registry answered ${facts.method} ${facts.path} with the Docker-Content-Digest ${quote(header)}, which is not a digest (${DIGEST_GRAMMAR}); refusing it.`,
      { ...facts, status: res.status }
    )
  }
  return header
}

/**
 * Every descriptor of a manifest or index (config, layers, blobs, child manifests, subject) must carry a
 * digest by the OCI grammar and, when it says one, a byte count: these digests become request paths
 * (a child PUT by digest, a blob mount) and comparisons.
 */
export function checkDescriptors(
  registry: string,
  bytes: Buffer,
  mediaType: string,
  facts: RegistryErrorFacts
): void {
  const where = refName(registry, facts.repository ?? '', facts.reference ?? '')
  let m: Record<string, unknown>
  try {
    m = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  } catch {
    if (KNOWN_MANIFEST_TYPES.has(mediaType))
      throw new RegistryProtocolError(`${where}: the ${mediaType} manifest is not JSON; refusing it.`, facts)
    return
  }
  if (!m || typeof m !== 'object') {
    if (KNOWN_MANIFEST_TYPES.has(mediaType))
      throw new RegistryProtocolError(`${where}: the manifest is not a JSON object; refusing it.`, facts)
    return
  }
  const fields: [string, unknown][] = [
    ['config', m.config],
    ['subject', m.subject]
  ]
  for (const list of ['layers', 'blobs', 'manifests']) {
    const v = m[list]
    if (v === undefined) continue
    if (!Array.isArray(v))
      throw new RegistryProtocolError(`${where}: the manifest's ${list} is not a list; refusing it.`, facts)
    v.forEach((d, i) => fields.push([`${list}[${i}]`, d]))
  }
  for (const [field, d] of fields) {
    if (d === undefined) continue
    const desc = d as { digest?: unknown; size?: unknown } | null
    if (!desc || typeof desc !== 'object' || typeof desc.digest !== 'string' || !isDigest(desc.digest)) {
      throw new RegistryProtocolError(
        `${where}: the manifest's ${field} has the digest ${quote(desc?.digest)}, which is not a digest (${DIGEST_GRAMMAR}); refusing to use it.`,
        facts
      )
    }
    if (desc.size !== undefined && !(Number.isSafeInteger(desc.size) && (desc.size as number) >= 0)) {
      throw new RegistryProtocolError(
        `${where}: the manifest's ${field} (${desc.digest}) has the size ${quote(desc.size)}, which is not a byte count; refusing it.`,
        facts
      )
    }
  }
}

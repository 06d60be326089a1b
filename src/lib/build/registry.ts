/**
 * build-push's registry side, through shipline's own registry client: the digest a tag has right now
 * (GET of the manifest, digest computed over the exact bytes), and putting the manifest a tag points at
 * under more tags, byte for byte (one push, the other tags by manifest PUT: the same digest by construction);
 * attaching an artifact (the provenance of `attest: true`) as a referrer of the pushed digest.
 */
import { RegistryClient } from '../registry/client.js'
import { RegistryError } from '../registry/errors.js'
import { pushReferrer, type PushedReferrer } from '../registry/referrers.js'
import type { ImageName } from './naming.js'
import { debug, type Logger } from '../log.js'

export interface RegistryAccess {
  /** the digest `tag` has in the registry now; undefined when the tag does not exist */
  digest(tag: string): Promise<string | undefined>
  /** puts the manifest of `from` under every tag of `to` (exact bytes, exact media type); returns its digest */
  retag(from: string, to: string[]): Promise<string>
  /** pushes `payload` as an OCI 1.1 referrer of `subject` (a digest), listed through the API or the tag schema */
  attach(subject: string, artifactType: string, payload: Buffer): Promise<PushedReferrer>
}

export interface RegistryLogin {
  username: string
  password: string
}

export function registryAccess(image: ImageName, login?: RegistryLogin, log?: Logger): RegistryAccess {
  const client = new RegistryClient({
    registry: image.registry,
    username: login?.username,
    password: login?.password,
    log: log && (line => debug(log, line)),
    userAgent: 'shipline-build-push'
  })
  // one Bearer token for reading back and for the tag PUTs
  client.authorize(image.path, ['pull', 'push'])
  return {
    async digest(tag) {
      try {
        return (await client.resolve(image.path, tag)).digest
      } catch (e) {
        if (e instanceof RegistryError && e.status === 404) return undefined
        throw e
      }
    },
    async retag(from, to) {
      const m = await client.getManifest(image.path, from)
      for (const tag of to) await client.putManifest(image.path, tag, m.bytes, m.mediaType)
      return m.digest
    },
    attach(subject, artifactType, payload) {
      return pushReferrer({
        client,
        repository: image.path,
        subject,
        artifactType,
        payload,
        log: log && (line => debug(log, line))
      })
    }
  }
}

/**
 * Reads the digest a tag has in the registry right now, for build-push's read-back after the push.
 * INTERIM: `docker manifest inspect` with the step's Docker config, until src/lib/registry's client lands.
 */
import type { ImageName } from './naming.js'
import type { DockerConfig } from '../docker/config.js'
import { runDocker } from '../docker/cli.js'

export function registryDigestReader(image: ImageName, config: DockerConfig): (tag: string) => Promise<string | undefined> {
  return async tag => {
    const insecure = /^(127\.|localhost(:|$)|\[::1\])/.test(image.registry) ? ['--insecure'] : []
    const r = await runDocker(['manifest', 'inspect', ...insecure, '--verbose', `${image.image}:${tag}`], { env: config.env })
    if (r.code !== 0) {
      if (/no such manifest|manifest unknown|not found/i.test(r.stderr)) return undefined
      throw new Error(`docker manifest inspect ${image.image}:${tag}: ${r.stderr.trim()}`)
    }
    const j = JSON.parse(r.stdout) as { Descriptor?: { digest?: string } }
    return j.Descriptor?.digest
  }
}

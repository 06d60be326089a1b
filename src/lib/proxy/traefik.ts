/**
 * Traefik (not an adapter: not installable here, so not tested on a real one): the dynamic file for its
 * file provider (`providers.file` with `watch: true`), a weighted service `shipline_<service>` over one
 * loadBalancer service per port. Traefik reloads a watched file by itself, without a restart; the user's
 * router points at `shipline_<service>@file`. A weight-0 port is left out of the weighted list.
 */
import { stringify } from 'yaml'
import { checkBackends, upstreamName, type Backend } from './types.js'

/** The dynamic configuration (YAML) that routes `service` to `backends` by weight. */
export function traefikDynamicFile(service: string, backends: Backend[]): string {
  const name = upstreamName(service)
  const live = checkBackends('traefik', service, backends).filter(b => b.weight > 0)
  const services: Record<string, unknown> = {
    [name]: { weighted: { services: live.map(b => ({ name: `${name}_${b.port}`, weight: b.weight })) } }
  }
  for (const b of live)
    services[`${name}_${b.port}`] = { loadBalancer: { servers: [{ url: `http://127.0.0.1:${b.port}` }] } }
  return `# written by shipline\n${stringify({ http: { services } })}`
}

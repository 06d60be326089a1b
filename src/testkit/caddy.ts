/**
 * A real caddy for tests: `caddy run --config <json>` with its admin endpoint and one HTTP server on free
 * loopback ports; HOME and the XDG dirs point into its own temp dir and the config is not persisted, so it
 * writes nothing outside. The server's route proxies to a reverse_proxy handler tagged
 * `"@id": "shipline_<service>"` (round_robin), as the user's config in docs/strategies.md. `more`: further
 * handlers, each in a route of its own matching the request's Host `host` (before the catch-all route of `id`).
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launchOnFreePorts, startProcess } from './net.js'

export interface Caddy {
  port: number
  url: string
  /** the admin endpoint, http://127.0.0.1:<port> */
  admin: string
  dir: string
  stop: () => Promise<void>
}

export interface CaddyHandler {
  id: string
  initialPort: number
}

export async function startCaddy(
  opts: CaddyHandler & { more?: (CaddyHandler & { host: string })[] }
): Promise<Caddy> {
  const handler = (h: CaddyHandler): Record<string, unknown> => ({
    handler: 'reverse_proxy',
    '@id': h.id,
    upstreams: [{ dial: `127.0.0.1:${h.initialPort}` }],
    load_balancing: { selection_policy: { policy: 'round_robin' } }
  })
  const dir = mkdtempSync(join(tmpdir(), 'shipline-caddy-'))
  const env = {
    ...process.env,
    HOME: dir,
    XDG_DATA_HOME: join(dir, 'data'),
    XDG_CONFIG_HOME: join(dir, 'config')
  }
  const file = join(dir, 'caddy.json')
  const { ports, stop } = await launchOnFreePorts('caddy', dir, 2, ([port, adminPort]) => {
    const admin = `127.0.0.1:${adminPort}`
    const config = {
      admin: { listen: admin, config: { persist: false } },
      storage: { module: 'file_system', root: join(dir, 'data') },
      apps: {
        http: {
          servers: {
            shipline: {
              listen: [`127.0.0.1:${port}`],
              automatic_https: { disable: true },
              routes: [
                ...(opts.more ?? []).map(h => ({ match: [{ host: [h.host] }], handle: [handler(h)] })),
                { handle: [handler(opts)] }
              ]
            }
          }
        }
      }
    }
    writeFileSync(file, JSON.stringify(config, null, 2))
    return startProcess('caddy', ['run', '--config', file], { env, cwd: dir })
  })
  return {
    port: ports[0],
    url: `http://127.0.0.1:${ports[0]}`,
    admin: `http://127.0.0.1:${ports[1]}`,
    dir,
    stop
  }
}

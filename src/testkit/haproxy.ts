/**
 * A real haproxy for tests: `haproxy -db -f <cfg>` on a free loopback port, its admin socket and config in
 * its own temp dir. The frontend sends everything to one backend (`shipline_<service>`) with two server
 * slots, s0 serving `initialPort` and s1 in maintenance (more backends alike), as the user's haproxy.cfg in docs/strategies.md.
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { launchOnFreePorts, startProcess } from './net.js'

export const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find(p => existsSync(p)) ?? 'haproxy'

export interface Haproxy {
  port: number
  url: string
  dir: string
  /** the admin socket (level admin) */
  socket: string
  stop: () => Promise<void>
}

export interface HaproxyBackend {
  name: string
  initialPort: number
  /** default roundrobin */
  balance?: string
}

/** The frontend sends everything to the first backend; the others are there for the runtime API. */
export async function startHaproxy(opts: { backends: HaproxyBackend[] }): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-haproxy-'))
  const socket = join(dir, 'admin.sock')
  const cfg = join(dir, 'haproxy.cfg')
  const { ports, stop } = await launchOnFreePorts('haproxy', dir, 1, ([port]) => {
    writeFileSync(
      cfg,
      [
        'global',
        `  stats socket ${socket} mode 600 level admin`,
        '  stats timeout 10s',
        'defaults',
        '  mode http',
        '  timeout connect 2s',
        '  timeout client 30s',
        '  timeout server 10s',
        '  timeout http-keep-alive 30s',
        'frontend fe',
        `  bind 127.0.0.1:${port}`,
        `  default_backend ${opts.backends[0].name}`,
        ...opts.backends.flatMap(b => [
          `backend ${b.name}`,
          `  balance ${b.balance ?? 'roundrobin'}`,
          `  server s0 127.0.0.1:${b.initialPort} weight 100`,
          `  server s1 127.0.0.1:${b.initialPort} weight 0 disabled`
        ]),
        ''
      ].join('\n')
    )
    return startProcess(HAPROXY, ['-db', '-f', cfg])
  })
  return { port: ports[0], url: `http://127.0.0.1:${ports[0]}`, dir, socket, stop }
}

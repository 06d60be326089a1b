/**
 * N sandbox "hosts" for fleet tests and bench/fleet.mjs: one real sshd per host (src/testkit/sshd.ts, its
 * own port, host key and client key), each reached over its own SSH connection.
 *
 * They all share this machine's filesystem and Docker engine, so what makes them separate hosts is done by
 * a thin adapter around each host's Remote: the shared project path and Compose project name in every
 * argument, stdin and file path are rewritten to that host's own (`<path>/h<i>`, `<project>-h<i>`), and
 * `@PORT@` in written files becomes the host's own published port. `breakHost(i)` gives one host a broken
 * configuration (its app listens on another port than its healthcheck asks, so it never turns healthy).
 */
import { connectSsh } from '../../src/lib/ssh/client.js'
import type { ExecOptions, Remote } from '../../src/lib/ssh/remote.js'
import { projectName } from '../../src/lib/compose/layout.js'
import { tar, type TarEntry } from '../../src/lib/compose/tar.js'
import { freePort } from '../../src/testkit/net.js'
import { startSshd, type Sshd } from '../../src/testkit/sshd.js'

export interface SandboxHost {
  label: string
  sshd: Sshd
  path: string
  project: string
  port: number
}

export interface SandboxFleet {
  hosts: SandboxHost[]
  /** host lines for deploy()'s `hosts` */
  labels: string[]
  /** deploy()'s `connect` */
  connect(label: string): Promise<Remote>
  breakHost(i: number | undefined): void
  /** SSH connections opened so far */
  connections: number
  stop(): Promise<void>
}

/** the compose file the fleet deploys: published port and inner port come from .env */
export const FLEET_COMPOSE = `services:
  app:
    image: placeholder
    environment:
      PORT: "\${APP_INNER_PORT:-8080}"
    ports: ["127.0.0.1:\${APP_PORT}:8080"]
    mem_limit: 32m
    init: true
    # the default bridge: no network per host project (the engine's address pools are shared and few)
    network_mode: bridge
`

export async function startFleet(n: number, path: string): Promise<SandboxFleet> {
  const project = projectName(path)
  const hosts: SandboxHost[] = []
  const started = await Promise.all(Array.from({ length: n }, () => startSshd()))
  for (const [i, sshd] of started.entries()) {
    hosts.push({
      label: `root@127.0.0.1:${sshd.port}`,
      sshd,
      path: `${path}/h${i}`,
      project: `${project}-h${i}`,
      port: await freePort()
    })
  }
  let broken: number | undefined
  const fleet: SandboxFleet = {
    hosts,
    labels: hosts.map(h => h.label),
    connections: 0,
    breakHost: i => (broken = i),
    async connect(label: string): Promise<Remote> {
      const i = hosts.findIndex(h => h.label === label)
      const h = hosts[i]
      const remote = await connectSsh({
        target: { host: '127.0.0.1', port: h.sshd.port, user: 'root' },
        privateKey: h.sshd.clientKey.privateKey,
        knownHosts: h.sshd.knownHostsLine
      })
      fleet.connections++
      // the longer string first: the path also occurs inside nothing else; the project name is a hash
      const rw = (s: string): string =>
        s
          .split(project)
          .join(h.project)
          .split(`${path}/`)
          .join(`${h.path}/`)
          .replace(new RegExp(`${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=$|[^/\\w-])`, 'g'), h.path)
      const text = (d: string): string =>
        rw(d)
          .split('@PORT@')
          .join(String(h.port))
          .split('@INNER@')
          .join(broken === i ? '9999' : '8080')
      // a release upload is a ustar archive on stdin: its files are rewritten one by one
      const data = (d: string | Buffer): string | Buffer =>
        typeof d === 'string'
          ? text(d)
          : isTar(d)
            ? tar(untar(d).map(e => ({ ...e, data: text(e.data.toString()) })))
            : d
      return {
        label: remote.label,
        exec: (argv: string[], opts: ExecOptions = {}) =>
          remote.exec(argv.map(rw), {
            ...opts,
            stdin: opts.stdin === undefined ? undefined : data(opts.stdin)
          }),
        writeFile: (p: string, d: string | Buffer, mode?: number) => remote.writeFile(rw(p), data(d), mode),
        readFile: (p: string) => remote.readFile(rw(p)),
        close: () => remote.close()
      }
    },
    async stop() {
      await Promise.all(hosts.map(h => h.sshd.stop()))
    }
  }
  return fleet
}

const isTar = (b: Buffer): boolean => b.length >= 1024 && b.subarray(257, 262).toString('latin1') === 'ustar'

/** Reads the regular files of a ustar archive (as src/lib/compose/tar.ts writes them). */
function untar(b: Buffer): (TarEntry & { data: Buffer })[] {
  const out: (TarEntry & { data: Buffer })[] = []
  let off = 0
  while (off + 512 <= b.length) {
    const h = b.subarray(off, off + 512)
    if (h.every(x => x === 0)) break
    const name = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '')
    const mode = parseInt(h.subarray(100, 108).toString('ascii'), 8)
    const size = parseInt(h.subarray(124, 136).toString('ascii'), 8)
    out.push({ name, mode, data: b.subarray(off + 512, off + 512 + size) })
    off += 512 + Math.ceil(size / 512) * 512
  }
  return out
}

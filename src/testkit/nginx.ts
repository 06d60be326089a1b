/**
 * A real nginx for tests and benchmarks: `nginx -p <dir> -c <conf> -g 'daemon off; pid …;'` on a free
 * loopback port, its config, temp paths and error log in its own temp dir. The server proxies every request
 * to the upstream `upstreamName` that the include file (written by shipline's blue-green strategy, or by
 * the caller) defines, exactly as a user's nginx.conf includes shipline's file.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, sleep, startProcess, waitForPort, type Proc } from './net.js'

import type { MakeRuntime } from '../lib/runtime/runtime.js'
import { runtimeFactory } from '../lib/strategy/host.js'
import { parseSlotPorts } from '../lib/strategy/options.js'
export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find(p => existsSync(p)) ?? 'nginx'

export interface NginxOptions {
  /** the upstream include file (absolute); created pointing at `initialPort` when missing */
  includeFile: string
  /** included in the server block (e.g. shipline's maintenance*.inc glob) */
  serverInclude?: string
  /** upstream name the include file defines (default shipline_app) */
  upstreamName?: string
  /** port written into a missing include file (default: a closed port, so nginx answers 502) */
  initialPort?: number
}

export interface Nginx {
  port: number
  url: string
  dir: string
  conf: string
  /** argv prefix to drive this instance: [nginx, -p, dir, -c, conf] */
  argv: string[]
  /** shell command strings for shipline's nginx-test-command / nginx-reload-command inputs */
  testCommand: string
  reloadCommand: string
  errorLog: () => string
  stop: () => Promise<void>
}

export async function startNginx(opts: NginxOptions): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-nginx-'))
  for (const d of ['logs', 'tmp']) mkdirSync(join(dir, d), { recursive: true })
  const upstream = opts.upstreamName ?? 'shipline_app'
  if (!existsSync(opts.includeFile)) {
    writeFileSync(
      opts.includeFile,
      `upstream ${upstream} {\n  server 127.0.0.1:${opts.initialPort ?? 9};\n}\n`
    )
  }
  let last = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const conf = join(dir, 'nginx.conf')
    const pid = join(dir, 'nginx.pid')
    writeFileSync(
      conf,
      [
        'worker_processes 1;',
        `error_log ${join(dir, 'logs', 'error.log')} warn;`,
        'events { worker_connections 1024; }',
        'http {',
        `  access_log off;`,
        `  client_body_temp_path ${join(dir, 'tmp')};`,
        `  proxy_temp_path ${join(dir, 'tmp')};`,
        `  fastcgi_temp_path ${join(dir, 'tmp')};`,
        `  uwsgi_temp_path ${join(dir, 'tmp')};`,
        `  scgi_temp_path ${join(dir, 'tmp')};`,
        `  include ${opts.includeFile};`,
        '  server {',
        `    listen 127.0.0.1:${port};`,
        ...(opts.serverInclude ? [`    include ${opts.serverInclude};`] : []),
        '    location / {',
        `      proxy_pass http://${upstream};`,
        '      proxy_connect_timeout 2s;',
        '      proxy_read_timeout 10s;',
        '    }',
        '  }',
        '}',
        ''
      ].join('\n')
    )
    const argv = [NGINX, '-p', dir, '-c', conf]
    const proc: Proc = startProcess(NGINX, ['-p', dir, '-c', conf, '-g', `daemon off; pid ${pid};`])
    let exited = false
    proc.child.once('exit', () => (exited = true))
    try {
      await Promise.race([
        waitForPort(port, '127.0.0.1', 10_000),
        (async () => {
          while (!exited) await sleep(50)
          throw new Error('exited')
        })()
      ])
    } catch {
      last = proc.output() + readLog(dir)
      await proc.stop()
      continue
    }
    const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`
    const head = `${q(NGINX)} -p ${q(dir)} -c ${q(conf)}`
    return {
      port,
      url: `http://127.0.0.1:${port}`,
      dir,
      conf,
      argv,
      testCommand: `${head} -g ${q(`pid ${pid};`)} -t -q`,
      reloadCommand: `${head} -g ${q(`pid ${pid};`)} -s reload`,
      errorLog: () => readLog(dir),
      stop: async () => {
        await proc.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  rmSync(dir, { recursive: true, force: true })
  throw new Error(`nginx did not start: ${last}`)
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'logs', 'error.log'), 'utf8')
  } catch {
    return ''
  }
}

/** nginx -t on a config, for a quick availability check. */
export function nginxAvailable(): boolean {
  try {
    execFileSync(NGINX, ['-v'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** deploy()'s `runtime` for blue-green behind this nginx: `web=<a>,<b>`-style ports, files in `includeDir`. */
export function blueGreenBehind(
  nginx: Nginx,
  o: { ports: string; includeDir: string; drainSeconds?: number; minFreeMiB?: number }
): MakeRuntime {
  return runtimeFactory({
    strategy: 'blue-green',
    target: 'compose',
    blueGreen: {
      ports: parseSlotPorts(o.ports),
      includeDir: o.includeDir,
      testCommand: nginx.testCommand,
      reloadCommand: nginx.reloadCommand,
      drainSeconds: o.drainSeconds ?? 1,
      minFreeMiB: o.minFreeMiB ?? 16
    }
  })!
}

/**
 * The `proxy` input: which proxy routes a blue-green service's traffic between its slots, and the adapter
 * for it (src/lib/proxy/{nginx,haproxy,caddy}.ts behind one ProxyAdapter interface).
 */
import { UserError } from '../errors.js'
import { CaddyAdapter } from './caddy.js'
import { HaproxyAdapter } from './haproxy.js'
import { NginxAdapter, type NginxAdapterOptions } from './nginx.js'
import type { AdapterHost, ProxyAdapter, ProxyName } from './types.js'

export const PROXIES: ProxyName[] = ['nginx', 'haproxy', 'caddy']

export type ProxyConfig =
  /** the include files, test and reload of the blue-green config (nginx-* inputs) */
  | { name: 'nginx' }
  /** `haproxy-socket`: the admin socket (level admin); `haproxy-state-file`: saved after each change */
  | { name: 'haproxy'; socket: string; stateFile?: string }
  /** `caddy-admin`: the admin endpoint on the host's loopback */
  | { name: 'caddy'; admin: string }

export const PROXY_DEFAULTS = {
  haproxySocket: '/run/haproxy/admin.sock',
  caddyAdmin: 'http://127.0.0.1:2019'
}

/** `proxy` with its settings; refuses settings of another proxy. */
export function parseProxy(raw: {
  proxy: string
  haproxySocket: string
  haproxyStateFile: string
  caddyAdmin: string
}): ProxyConfig {
  const name = (raw.proxy.trim().toLowerCase() || 'nginx') as ProxyName
  if (!PROXIES.includes(name))
    throw new UserError(`Input 'proxy' must be one of ${PROXIES.join(', ')}, got '${raw.proxy.trim()}'.`)
  const stray = (
    [
      ['haproxy-socket', raw.haproxySocket, 'haproxy'],
      ['haproxy-state-file', raw.haproxyStateFile, 'haproxy'],
      ['caddy-admin', raw.caddyAdmin, 'caddy']
    ] as const
  ).find(([, v, p]) => v.trim() && p !== name)
  if (stray)
    throw new UserError(
      `Input '${stray[0]}' is for 'proxy: ${stray[2]}', but 'proxy' is '${name}'; set 'proxy: ${stray[2]}' or remove '${stray[0]}'.`
    )
  const path = (input: string, v: string): string => {
    if (!/^\/[A-Za-z0-9._/@+-]*$/.test(v))
      throw new UserError(`Input '${input}' must be an absolute path of plain characters, got '${v}'.`)
    return v
  }
  if (name === 'haproxy')
    return {
      name,
      socket: path('haproxy-socket', raw.haproxySocket.trim() || PROXY_DEFAULTS.haproxySocket),
      ...(raw.haproxyStateFile.trim()
        ? { stateFile: path('haproxy-state-file', raw.haproxyStateFile.trim()) }
        : {})
    }
  if (name === 'caddy') {
    const admin = (raw.caddyAdmin.trim() || PROXY_DEFAULTS.caddyAdmin).replace(/\/+$/, '')
    if (!/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}$/.test(admin))
      throw new UserError(
        `Input 'caddy-admin' must be http://127.0.0.1:<port> (caddy's admin endpoint on the host's loopback), got '${admin}'.`
      )
    return { name, admin }
  }
  return { name }
}

/** The adapter of a proxy config on a host. */
export function makeAdapter(cfg: ProxyConfig, host: AdapterHost, nginx: NginxAdapterOptions): ProxyAdapter {
  switch (cfg.name) {
    case 'haproxy':
      return new HaproxyAdapter(host, { socket: cfg.socket, stateFile: cfg.stateFile })
    case 'caddy':
      return new CaddyAdapter(host, { admin: cfg.admin })
    default:
      return new NginxAdapter(host, nginx)
  }
}

export type { ProxyAdapter, ProxyName }

/**
 * Maintenance mode: the project's nginx answers every request with a 503 page and `Retry-After`, from an
 * include file shipline writes into the server block the user points at it:
 *
 *   server { …  include /opt/app/.shipline/nginx/maintenance*.inc; … }   # a glob: fine before the first use
 *
 * Switching writes `<include-dir>/maintenance.inc` (the page inline: nginx's workers need not read any
 * file of shipline's state, which is the deploy user's own) atomically, runs the
 * nginx test command, and reloads only when it passes; when either fails the previous files go back (the
 * same host-side script as blue-green's switch, src/lib/strategy/scripts.ts). It runs under the host lock and
 * is journaled: a `maintenance` ledger entry with the state it was switched to. Off leaves a comment-only
 * include file, so the user's `include` keeps resolving.
 */
import { UserError, errorMessage } from '../errors.js'
import { failureLine, liveRelease, ReleaseStore, type ReleaseMeta } from '../release/store.js'
import { NGINX_SWITCH_SCRIPT } from '../strategy/scripts.js'
import type { Logger } from '../log.js'
import type { Remote } from '../ssh/remote.js'

export interface MaintenanceConfig {
  /** host directory of the include file; default <path>/.shipline/nginx (blue-green's include dir) */
  includeDir?: string
  testCommand: string
  reloadCommand: string
  /** the Retry-After header's seconds */
  retryAfterSec: number
  /** the 503 page's HTML (default: a short page) */
  page?: string
}

export type MaintenanceState = 'on' | 'off'

/** `maintenance`: on | off (switch only, nothing deployed) or release (on around a deploy's release). */
export type MaintenanceMode = MaintenanceState | 'release'

export function parseMaintenance(raw: string): MaintenanceMode | undefined {
  const v = raw.trim().toLowerCase()
  if (v === '') return undefined
  if (v === 'on' || v === 'off' || v === 'release') return v
  throw new UserError(
    `Input 'maintenance' must be 'on' or 'off' (switch the nginx maintenance page and deploy nothing) or 'release' (on from the release command until the switch), got '${raw.trim()}'.`
  )
}

export const INCLUDE_FILE = 'maintenance.inc'

/** The page as an nginx single-quoted string: `$` (a variable to nginx), `'` and `\` as HTML references. */
const nginxText = (html: string): string => `'${html.replace(/[$'\\]/g, c => `&#${c.charCodeAt(0)};`)}'`

const DEFAULT_PAGE =
  '<!doctype html><html><head><meta charset="utf-8"><title>Maintenance</title></head>' +
  '<body><h1>Down for maintenance</h1><p>We will be back in a few minutes.</p></body></html>\n'

/** The include file's text (server context) for a state. */
export function includeText(on: boolean, cfg: MaintenanceConfig, stamp: string): string {
  if (!on) return `# written by shipline: maintenance off (${stamp})\n`
  return [
    `# written by shipline: maintenance on (${stamp})`,
    'error_page 503 @shipline_maintenance;',
    'location @shipline_maintenance {',
    '  default_type text/html;',
    `  add_header Retry-After ${cfg.retryAfterSec} always;`,
    '  add_header Cache-Control no-store always;',
    `  return 503 ${nginxText(cfg.page ?? DEFAULT_PAGE)};`,
    '}',
    'return 503;',
    ''
  ].join('\n')
}

/** argv of the host-side switch: files written, nginx tested (put back on failure), reloaded, state recorded. */
export function maintenanceArgv(
  store: ReleaseStore,
  cfg: MaintenanceConfig,
  on: boolean,
  stamp = new Date().toISOString()
): string[] {
  const dir = cfg.includeDir ?? `${store.layout.state}/nginx`
  return [
    'sh',
    '-c',
    NGINX_SWITCH_SCRIPT,
    'sh',
    dir,
    cfg.testCommand,
    cfg.reloadCommand,
    `${store.layout.state}/maintenance`,
    `${on ? 'on' : 'off'} ${stamp}`,
    INCLUDE_FILE,
    includeText(on, cfg, stamp)
  ]
}

/** Switches maintenance on one locked host and journals it. Throws a UserError (files put back) on failure. */
export async function switchMaintenance(
  store: ReleaseStore,
  live: Pick<ReleaseMeta, 'id' | 'version'> | undefined,
  cfg: MaintenanceConfig,
  on: boolean,
  who: { actor?: string; runUrl?: string; reason?: string } = {}
): Promise<void> {
  const r = await store.exec(maintenanceArgv(store, cfg, on), { timeoutMs: 120_000 })
  if (r.code !== 0) {
    throw new UserError(
      `${store.label}: switching maintenance ${on ? 'on' : 'off'} failed: ${failureLine(r)}; nginx keeps its previous configuration`,
      (r.stdout + r.stderr).trim()
    )
  }
  await store.append({
    event: 'maintenance',
    maintenance: on ? 'on' : 'off',
    release: live?.id ?? '',
    version: live?.version,
    actor: who.actor,
    runUrl: who.runUrl,
    reason: who.reason
  })
}

export interface MaintenanceHost {
  host: string
  ok: boolean
  error?: string
}

/**
 * maintenance on|off alone, host by host under each host's lock. All or nothing: when a host fails, the
 * hosts already switched are switched back, and the error names the host.
 */
export async function maintenance(o: {
  hosts: string[]
  connect(host: string): Promise<Remote>
  path: string
  project?: string
  lockTimeout: number
  on: boolean
  cfg: MaintenanceConfig
  log: Logger
  actor?: string
  runUrl?: string
}): Promise<{ ok: boolean; hosts: MaintenanceHost[]; error?: string }> {
  const done: string[] = []
  const results: MaintenanceHost[] = []
  const owner = `shipline maintenance ${o.on ? 'on' : 'off'}${o.runUrl ? ` ${o.runUrl}` : ''}`
  const visit = async (host: string, on: boolean, reason?: string): Promise<void> => {
    const store = new ReleaseStore(await o.connect(host), { path: o.path, project: o.project, log: o.log })
    const state = await store.lock(o.lockTimeout, owner)
    try {
      await switchMaintenance(store, liveRelease(state), o.cfg, on, {
        actor: o.actor,
        runUrl: o.runUrl,
        reason
      })
    } finally {
      await store
        .finish()
        .catch(e => o.log.warning(`${store.label}: letting the lock go: ${errorMessage(e)}`))
    }
  }
  for (const host of o.hosts) {
    try {
      await visit(host, o.on)
      done.push(host)
      results.push({ host, ok: true })
      o.log.info(`${host}: maintenance ${o.on ? 'on' : 'off'}`)
    } catch (e) {
      const error = errorMessage(e).split('\n')[0]
      results.push({ host, ok: false, error })
      // all or nothing: the hosts already switched go back
      const back: string[] = []
      for (const d of done.reverse()) {
        try {
          await visit(d, !o.on, `put back: ${host} failed`)
          back.push(d)
        } catch (e2) {
          o.log.warning(`${d}: switching maintenance back failed: ${errorMessage(e2)}`)
        }
      }
      return {
        ok: false,
        hosts: results,
        error: `${error}${back.length ? `; switched back on ${back.join(', ')}` : ''}`
      }
    }
  }
  return { ok: true, hosts: results }
}

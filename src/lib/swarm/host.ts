/**
 * `target: swarm`: a release deployed as a stack on a swarm manager, over the same SSH connection, lock,
 * release folders, ledger and current pointer as a Compose host. The swarm runtime (src/lib/runtime/swarm.ts)
 * starts containers the swarm way; this module holds its pure parts:
 *
 * - upload: the release's override pins every image by digest (as for Compose) and injects
 *   `deploy.update_config: {order: start-first, failure_action: pause}` into each updated service, so a new
 *   task runs (and turns healthy) beside the old one before the old one stops, and a failing update stops;
 * - up: `docker stack deploy --with-registry-auth --prune -c <release files> <stack>` (registry login in a
 *   temporary config, password on stdin; the release's .env exported as data, since stack deploy ignores it);
 * - waitHealthy: polls `docker service inspect` (UpdateStatus) and `docker service ps` until every service
 *   runs as many tasks of its spec's image as desired (a task with a HEALTHCHECK is only `Running` once
 *   healthy), instead of `--detach=false`; paused/rolled-back updates and crash-looping tasks fail at once;
 * - recoverScript: a lost connection re-deploys the previous release's files.
 *
 * A rollback re-deploys the kept release's own files (any kept release), not `docker service rollback`
 * (which knows only the one previous spec of each service).
 */
import { parse, stringify } from 'yaml'
import { UserError } from '../errors.js'

const UPDATE_CONFIG = { order: 'start-first', failure_action: 'pause', monitor: '5s' }

/** A stack name docker accepts: letters, digits, _ . - (starting with a letter or digit), at most 63. */
export function validateStackName(raw: string): string {
  const s = raw.trim()
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/.test(s))
    throw new UserError(
      `Input 'stack' must be a Docker stack name (letters, digits, _ . -; at most 63), got '${raw}'.`
    )
  return s
}

/** The compose file version an override needs for `order: start-first` (3.4+); keeps a newer one. */
export function stackVersion(version: string | undefined): string {
  const m = /^3\.(\d+)$/.exec(version ?? '')
  return m && Number(m[1]) >= 4 ? (version as string) : '3.8'
}

/** Rewrites an override (image pins) for swarm: start-first updates for the updated services. */
export function swarmOverride(override: string, updated: string[], version?: string): string {
  const doc = (parse(override) ?? {}) as {
    version?: string
    services?: Record<string, Record<string, unknown>>
  }
  const services = doc.services ?? {}
  for (const s of updated) {
    const svc = (services[s] ??= {})
    const deploy = (svc.deploy ?? {}) as Record<string, unknown>
    deploy.update_config = { ...UPDATE_CONFIG }
    svc.deploy = deploy
  }
  const out = { version: stackVersion(version ?? doc.version), services }
  return (
    '# written by shipline: pins each service to the digest of this release, start-first updates (target: swarm)\n' +
    stringify(out)
  )
}

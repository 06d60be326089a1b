/**
 * The maintenance inputs (deploy-ssh and ship): `maintenance` (on | off: switch only, deploy-ssh; release:
 * on around a deploy's release command until the switch), `maintenance-retry-after`, `maintenance-page`,
 * and the nginx settings blue-green uses too (`nginx-include-dir`, `nginx-test-command`,
 * `nginx-reload-command`). maintenanceStep() is deploy-ssh's switch-only run.
 */
import * as core from '@actions/core'
import * as inputs from './inputs.js'
import { fleetOptions, readFleetInputs, runFacts } from './deploy-inputs.js'
import { coreLog } from './log.js'
import { UserError } from '../lib/errors.js'
import { readNginxInputs } from './strategy-inputs.js'
import {
  maintenance,
  parseMaintenance,
  type MaintenanceConfig,
  type MaintenanceMode
} from '../lib/deploy/maintenance.js'

export function readMaintenanceMode(): MaintenanceMode | undefined {
  return parseMaintenance(inputs.str('maintenance'))
}

export function readMaintenanceConfig(): MaintenanceConfig {
  return {
    ...readNginxInputs(),
    retryAfterSec: inputs.int('maintenance-retry-after', 120, { min: 0, max: 86400 }),
    page: inputs.str('maintenance-page') || undefined
  }
}

/** deploy-ssh with `maintenance: on|off`: the switch on every host (all or nothing), nothing deployed. */
export async function maintenanceStep(mode: 'on' | 'off'): Promise<void> {
  if (inputs.list('images', { commas: false }).length)
    throw new UserError(
      `Input 'maintenance: ${mode}' switches the maintenance page and deploys nothing, but 'images' is set. Remove 'images' for a switch-only step, or use 'maintenance: release' to keep the page on during a deploy's release command.`
    )
  const fleet = readFleetInputs()
  const cfg = readMaintenanceConfig()
  const opts = fleetOptions(fleet, runFacts())
  const r = await maintenance({ ...opts, on: mode === 'on', cfg, log: coreLog })
  core.setOutput('maintenance', r.ok ? mode : mode === 'on' ? 'off' : 'on')
  await core.summary
    .addHeading(`deploy-ssh: maintenance ${mode}${r.ok ? '' : ' failed'}`, 3)
    .addTable([
      [
        { data: 'host', header: true },
        { data: 'maintenance', header: true }
      ],
      ...r.hosts.map(h => [h.host, h.ok ? mode : `failed: ${h.error ?? ''}`])
    ])
    .write()
  if (!r.ok) throw new UserError(`maintenance ${mode} failed: ${r.error ?? 'unknown'}`)
  core.info(`maintenance ${mode} on ${r.hosts.length} host(s) of ${fleet.path}`)
}

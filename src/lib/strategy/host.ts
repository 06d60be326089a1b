/**
 * Which Runtime deploy() and rollback() drive on each host, from the `strategy` and `target` inputs:
 * compose (recreate, the default), blue-green (slots behind nginx) or swarm. The release store is the same
 * for all three; only what starts containers differs (src/lib/runtime).
 */
import { UserError } from '../errors.js'
import { validateStackName } from '../swarm/host.js'
import { BlueGreenRuntime } from '../runtime/blue-green.js'
import { SwarmRuntime } from '../runtime/swarm.js'
import type { MakeRuntime } from '../runtime/runtime.js'
import type { BlueGreenConfig, StrategyName } from './options.js'

export type Target = 'compose' | 'swarm'

export function parseTarget(raw: string): Target {
  const v = raw.trim().toLowerCase()
  if (v === '' || v === 'compose') return 'compose'
  if (v === 'swarm') return 'swarm'
  throw new UserError(`Input 'target' must be 'compose' or 'swarm', got '${raw.trim()}'.`)
}

export interface RuntimeChoice {
  strategy: StrategyName
  target: Target
  blueGreen?: BlueGreenConfig
  /** swarm: the stack name (default: the Compose project name of the path) */
  stack?: string
}

export type { MakeRuntime }

/** The runtime factory for deploy()/rollback(); undefined for the default (recreate on Compose). */
export function runtimeFactory(c: RuntimeChoice): MakeRuntime | undefined {
  if (c.target === 'swarm') {
    if (c.strategy === 'blue-green')
      throw new UserError(
        `'strategy: blue-green' is for Compose hosts; with 'target: swarm' updates are start-first already. Remove 'strategy' or set it to 'recreate'.`
      )
    const stack = c.stack === undefined ? undefined : validateStackName(c.stack)
    return store => new SwarmRuntime(store, stack)
  }
  if (c.strategy === 'blue-green') {
    if (!c.blueGreen || c.blueGreen.ports.size === 0)
      throw new UserError(
        `'strategy: blue-green' needs 'blue-green-ports': one line per service, service=<blue port>,<green port>, e.g. 'web=8001,8002'.`
      )
    const cfg = c.blueGreen
    return store => new BlueGreenRuntime(store, cfg)
  }
  return undefined
}

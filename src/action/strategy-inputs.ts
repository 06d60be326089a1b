/**
 * The inputs that choose how releases reach a host (deploy-ssh, rollback and ship): `strategy`
 * (recreate | blue-green) with the blue-green settings and the `proxy` that switches the slots, and `target` (compose | swarm) with `stack`.
 * Checked before anything connects; returns deploy()/rollback()'s `runtime` factory (undefined: recreate).
 */
import * as inputs from './inputs.js'
import { runtimeFactory, parseTarget, type MakeRuntime } from '../lib/strategy/host.js'
import {
  BLUE_GREEN_DEFAULTS,
  checkBlueGreen,
  parseSlotPorts,
  parseStrategy,
  type BlueGreenConfig,
  type StrategyName
} from '../lib/strategy/options.js'
import { parseProxy } from '../lib/proxy/index.js'
import { UserError } from '../lib/errors.js'

export interface StrategyInputs {
  runtime?: MakeRuntime
  target: ReturnType<typeof parseTarget>
  strategy: StrategyName
  /** blue-green: the services that run in slots (blue-green-ports), in order */
  slotServices: string[]
}

/** `nginx-include-dir`, `nginx-test-command`, `nginx-reload-command`: blue-green's switch and maintenance mode. */
export function readNginxInputs(): Pick<BlueGreenConfig, 'includeDir' | 'testCommand' | 'reloadCommand'> {
  return {
    includeDir: inputs.str('nginx-include-dir') || undefined,
    testCommand: inputs.str('nginx-test-command', BLUE_GREEN_DEFAULTS.testCommand),
    reloadCommand: inputs.str('nginx-reload-command', BLUE_GREEN_DEFAULTS.reloadCommand)
  }
}

export function readStrategyInputs(): StrategyInputs {
  const strategy = parseStrategy(inputs.str('strategy'))
  const target = parseTarget(inputs.str('target'))
  let blueGreen: BlueGreenConfig | undefined
  if (strategy === 'blue-green') {
    blueGreen = {
      ports: parseSlotPorts(inputs.str('blue-green-ports')),
      ...readNginxInputs(),
      drainSeconds: inputs.int('drain-seconds', BLUE_GREEN_DEFAULTS.drainSeconds, { min: 0, max: 3600 }),
      minFreeMiB: inputs.int('min-free-memory', BLUE_GREEN_DEFAULTS.minFreeMiB, { min: 0, max: 1024 * 1024 }),
      warmSeconds: inputs.int('keep-previous-warm', BLUE_GREEN_DEFAULTS.warmSeconds, { min: 0, max: 86_400 }),
      proxy: parseProxy({
        proxy: inputs.str('proxy'),
        haproxySocket: inputs.str('haproxy-socket'),
        haproxyStateFile: inputs.str('haproxy-state-file'),
        caddyAdmin: inputs.str('caddy-admin')
      })
    }
    checkBlueGreen(blueGreen, [...blueGreen.ports.keys()])
  }
  if (!blueGreen && inputs.int('keep-previous-warm', 0, { min: 0, max: 86_400 }) > 0)
    throw new UserError(
      `Input 'keep-previous-warm' keeps the old blue-green slot running; set 'strategy: blue-green', or remove 'keep-previous-warm'.`
    )
  if (!blueGreen && inputs.str('proxy').trim() && inputs.str('proxy').trim() !== 'nginx')
    throw new UserError(
      `Input 'proxy: ${inputs.str('proxy').trim()}' switches blue-green slots; set 'strategy: blue-green', or remove 'proxy'.`
    )
  const runtime = runtimeFactory({ strategy, target, blueGreen, stack: inputs.str('stack') || undefined })
  const slotServices = blueGreen ? [...blueGreen.ports.keys()] : []
  return runtime ? { runtime, target, strategy, slotServices } : { target, strategy, slotServices }
}

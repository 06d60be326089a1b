/**
 * The `strategy` input and the blue-green inputs, parsed and checked before any host is contacted.
 * Plain module: no @actions/core, every failure a UserError that says the fix.
 */
import { UserError } from '../errors.js'
import { parseList } from '../parse.js'
import { validateServiceName } from '../compose/validate.js'
import type { ProxyConfig } from '../proxy/index.js'

export type StrategyName = 'recreate' | 'blue-green'
const STRATEGIES: StrategyName[] = ['recreate', 'blue-green']

export function parseStrategy(raw: string): StrategyName {
  const v = raw.trim().toLowerCase()
  if (v === '') return 'recreate'
  if ((STRATEGIES as string[]).includes(v)) return v as StrategyName
  throw new UserError(`Input 'strategy' must be 'recreate' or 'blue-green', got '${raw.trim()}'.`)
}

export type Slot = 'blue' | 'green'
export const SLOTS: Slot[] = ['blue', 'green']
export const otherSlot = (s: Slot | undefined): Slot => (s === 'blue' ? 'green' : 'blue')

export interface BlueGreenConfig {
  /** service → [blue port, green port] on the host */
  ports: Map<string, [number, number]>
  /** directory on the host for the upstream include files (<dir>/<service>.conf); default <path>/.shipline/nginx */
  includeDir?: string
  /** shell command run on the host before a reload; its failure keeps the old upstream (default `nginx -t`) */
  testCommand: string
  /** shell command run on the host to load the new upstream (default `nginx -s reload`) */
  reloadCommand: string
  /** seconds the old slot keeps running after the switch, for requests in flight (default 10) */
  drainSeconds: number
  /** MiB that must be available on the host when no service declares a memory limit (default 128) */
  minFreeMiB: number
  /**
   * keep-previous-warm: seconds the old slot keeps running after the switch (a rollback inside the window is
   * a proxy switch); then it is stopped and kept. 0 (default): stopped after drain-seconds.
   */
  warmSeconds?: number
  /** the proxy that switches the slots (default nginx, with the settings above) */
  proxy?: ProxyConfig
}

export const BLUE_GREEN_DEFAULTS = {
  testCommand: 'nginx -t',
  reloadCommand: 'nginx -s reload',
  drainSeconds: 10,
  minFreeMiB: 128,
  warmSeconds: 0
}

const PORTS_HELP = `one line per service: service=<blue port>,<green port>, e.g. 'web=8001,8002'`

/** `blue-green-ports`: `web=8001,8002` lines (also `web=8001:8002`). */
export function parseSlotPorts(raw: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>()
  const seen = new Map<number, string>()
  for (const line of parseList(raw, { commas: false })) {
    const m = /^([^=\s]+)\s*=\s*(\d{1,5})\s*[,:/ ]\s*(\d{1,5})$/.exec(line)
    if (!m) throw new UserError(`Input 'blue-green-ports': '${line}' is not ${PORTS_HELP}.`)
    const svc = validateServiceName(m[1], 'blue-green-ports')
    const a = Number(m[2])
    const b = Number(m[3])
    for (const p of [a, b]) {
      if (p < 1 || p > 65535)
        throw new UserError(`Input 'blue-green-ports': port ${p} of '${svc}' is outside 1-65535.`)
      const other = seen.get(p)
      if (other !== undefined)
        throw new UserError(
          `Input 'blue-green-ports': port ${p} is used twice (${other} and ${svc}). Give each slot of each service its own port.`
        )
      seen.set(p, svc)
    }
    if (out.has(svc))
      throw new UserError(`Input 'blue-green-ports' names '${svc}' twice. Keep one line per service.`)
    out.set(svc, [a, b])
  }
  return out
}

/** Checks the blue-green config against the services a release updates. */
export function checkBlueGreen(cfg: BlueGreenConfig, services: string[]): void {
  if (cfg.ports.size === 0)
    throw new UserError(
      `'strategy: blue-green' needs 'blue-green-ports': ${PORTS_HELP}. The service publishes \${SHIPLINE_PORT} on the host.`
    )
  for (const s of cfg.ports.keys()) {
    if (!services.includes(s))
      throw new UserError(
        `Input 'blue-green-ports' names '${s}', which this release does not update. Known: ${services.join(', ')}.`
      )
  }
  if (!cfg.testCommand.trim() || !cfg.reloadCommand.trim())
    throw new UserError(`Inputs 'nginx-test-command' and 'nginx-reload-command' must not be empty when set.`)
  if (cfg.includeDir !== undefined && !/^\/[A-Za-z0-9._/@+-]*$/.test(cfg.includeDir))
    throw new UserError(
      `Input 'nginx-include-dir' must be an absolute path of plain characters, got '${cfg.includeDir}'.`
    )
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Compose memory values: 67108864, "64m", "64M", "1g", "512MiB", "1.5gb" → bytes; undefined if absent/odd. */
export function parseMemory(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v
  if (typeof v !== 'string') return undefined
  const m = /^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$/i.exec(v)
  if (!m) return undefined
  return Math.round(Number(m[1]) * UNITS[m[2].toLowerCase()])
}

/** The memory limit of a service in a resolved compose config (mem_limit or deploy.resources.limits.memory). */
export function memoryLimit(service: unknown): number | undefined {
  if (!service || typeof service !== 'object') return undefined
  const s = service as {
    mem_limit?: unknown
    deploy?: { resources?: { limits?: { memory?: unknown } } }
  }
  return parseMemory(s.mem_limit) ?? parseMemory(s.deploy?.resources?.limits?.memory)
}

/** The service name as an environment variable suffix: web-api → WEB_API. */
export const envSuffix = (service: string): string => service.toUpperCase().replace(/[^A-Z0-9]/g, '_')

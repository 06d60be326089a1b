/**
 * The probe before the switch: smoke-test's checks (the same YAML, Prometheus validation included) run
 * against a port on the host's own loopback, reached through the deploy's SSH connection (Remote.tunnel),
 * so nothing is exposed publicly and nothing live is involved: blue-green probes the idle slot's port
 * before nginx is switched, recreate probes the service's host port right after `up`, inside the health gate.
 */
import type { Remote } from '../ssh/remote.js'
import type { Logger } from '../log.js'
import { Redactor } from '../redact.js'
import { UserError } from '../errors.js'
import { parseChecks, type Check } from './checks.js'
import { runSmoke, type CheckResult } from './run.js'

export interface ProbeOptions {
  checks: Check[]
  /** deadline of the whole probe, retries included */
  timeoutSec: number
  requestTimeoutSec: number
  /** recreate: the host port the service publishes (127.0.0.1:<port> on the host) */
  port?: number
  /** blue-green: the slot service probed (default the first of blue-green-ports) */
  service?: string
  /** holds the checks' header values (the action layer masked them) */
  redactor?: Redactor
}

/** What the probe found, for the ledger entry and the summary. */
export interface ProbeRecord {
  port: number
  passed: boolean
  durationMs: number
  /** `path status` of each check, failing ones with their error */
  checks: string[]
}

const line = (r: CheckResult): string =>
  `${r.path} ${r.status ?? '-'}${r.ok ? '' : ` FAILED: ${r.error ?? 'failed'}`}`

/** Runs the checks against 127.0.0.1:port on the host; never throws for a failing check (passed: false). */
export async function probePort(
  remote: Remote,
  port: number,
  o: ProbeOptions,
  log: Logger
): Promise<ProbeRecord> {
  const redactor = o.redactor ?? new Redactor()
  const t0 = Date.now()
  let tunnel: Awaited<ReturnType<NonNullable<Remote['tunnel']>>> | undefined
  try {
    tunnel = remote.tunnel ? await remote.tunnel(port) : undefined
  } catch (e) {
    return {
      port,
      passed: false,
      durationMs: Date.now() - t0,
      checks: [`(no tunnel to port ${port}: ${(e as Error).message})`]
    }
  }
  try {
    const report = await runSmoke({
      url: `http://127.0.0.1:${tunnel?.port ?? port}`,
      checks: o.checks,
      timeoutMs: o.timeoutSec * 1000,
      requestTimeoutMs: Math.min(o.requestTimeoutSec, o.timeoutSec) * 1000,
      redactor,
      log: l => log.info(`${remote.label}: probe: ${l}`)
    })
    return { port, passed: report.passed, durationMs: Date.now() - t0, checks: report.results.map(line) }
  } finally {
    await tunnel?.close()
  }
}

/** One line for a failed probe (the health result's state). */
export const probeFailure = (p: ProbeRecord): string =>
  `the probe of port ${p.port} failed: ${p.checks.filter(c => / FAILED|^\(/.test(c)).join('; ')}`

/** The probe inputs as read (text), checked against the strategy before anything connects. */
export interface ProbeInputText {
  checks: string
  port: string
  service: string
  timeoutSec: number
  requestTimeoutSec: number
}

/**
 * `probe-checks` (YAML as smoke-test's `checks`; `default`: /health, /readyz, /metrics), `probe-port`
 * (recreate: the host port the service publishes), `probe-service` (blue-green: the slot service).
 * Empty `probe-checks`: no probe. Every error names the input and the fix.
 */
export function parseProbe(
  t: ProbeInputText,
  ctx: { strategy: 'recreate' | 'blue-green'; target: 'compose' | 'swarm'; slotServices: string[] }
): ProbeOptions | undefined {
  const text = t.checks.trim()
  if (!text) {
    for (const [name, v] of [
      ['probe-port', t.port],
      ['probe-service', t.service]
    ])
      if (v.trim())
        throw new UserError(
          `Input '${name}' is set without 'probe-checks': set 'probe-checks' (e.g. 'default' for /health, /readyz and /metrics), or remove '${name}'.`
        )
    return undefined
  }
  if (ctx.target === 'swarm')
    throw new UserError(
      "Input 'probe-checks' is not supported with 'target: swarm': Swarm routes through its own mesh; smoke-test the service after the deploy instead."
    )
  const checks = parseChecks(/^(default|true)$/i.test(text) ? '' : text, 'probe-checks')
  const base = { checks, timeoutSec: t.timeoutSec, requestTimeoutSec: t.requestTimeoutSec }
  if (ctx.strategy === 'blue-green') {
    if (t.port.trim())
      throw new UserError(
        "Input 'probe-port' is for 'strategy: recreate'; blue-green probes the idle slot's own port (from 'blue-green-ports'). Remove 'probe-port', or name the slot service with 'probe-service'."
      )
    const service = t.service.trim() || ctx.slotServices[0]
    if (!ctx.slotServices.includes(service))
      throw new UserError(
        `Input 'probe-service' names '${service}', which 'blue-green-ports' does not list (${ctx.slotServices.join(', ')}). Name one of them.`
      )
    return { ...base, service }
  }
  if (t.service.trim())
    throw new UserError(
      "Input 'probe-service' is for 'strategy: blue-green'; recreate probes 'probe-port' on the host. Remove 'probe-service'."
    )
  const port = Number(t.port.trim())
  if (!/^\d{1,5}$/.test(t.port.trim()) || port < 1 || port > 65535)
    throw new UserError(
      `Input 'probe-port' ${t.port.trim() ? `'${t.port.trim()}' is not a port` : 'is required with probe-checks and strategy: recreate'}: give the host port the service publishes (the probe reaches 127.0.0.1:<port> on the host through the SSH connection), e.g. 'probe-port: 8080'.`
    )
  return { ...base, port }
}

/**
 * One scrape of a slot's `/metrics` for the metrics gate: fetched with the smoke checks' `send()` (one
 * deadline, a body cap), checked and parsed by the exposition validator in the same pass (its `onSample`
 * hook: one parser for both), kept as a flat list of samples. The caller opens the tunnel and passes its
 * base URL; nothing here knows of SSH.
 */
import { UserError } from '../errors.js'
import { validateExposition, type ExpositionFormat } from '../prometheus/validate.js'
import { send } from '../smoke/http.js'

export interface Sample {
  /** as written: http_requests_total, http_request_duration_seconds_bucket */
  name: string
  labels: Record<string, string>
  value: number
  /** the family's declared type ('' when none): a counter's reset is told from a gauge falling */
  type: string
}

export interface Scrape {
  url: string
  /** when the answer arrived, ms since the epoch (a window's length is the difference of two of these) */
  at: number
  format: ExpositionFormat
  samples: Sample[]
}

export interface ScrapeOptions {
  /** default /metrics */
  path?: string
  /** the whole exchange, default 10 s */
  timeoutMs?: number
  /** default 16 MiB */
  maxBodyBytes?: number
  headers?: Record<string, string>
  /** names the setting in errors (default canary-rules) */
  input?: string
}

/** What Prometheus asks for: OpenMetrics first, the text format otherwise. */
export const ACCEPT =
  'application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

/** Parses an exposition; refuses one the validator rejects (a gate must not judge half-read figures). */
export function parseScrape(text: string, contentType: string | undefined, url: string, at: number): Scrape {
  const samples: Sample[] = []
  const r = validateExposition(text, contentType, {
    maxErrors: 3,
    onSample: s => samples.push({ name: s.name, labels: s.labels, value: s.value, type: s.type })
  })
  if (r.errorCount > 0) {
    const first = r.errors[0]
    throw new UserError(
      `The metrics at ${url} are not a valid ${r.format} exposition (line ${first.line}, ${first.rule}: ${first.message}); fix the exporter, then deploy again.`,
      r.errors.map(e => `line ${e.line} ${e.rule}: ${e.message}`).join('\n')
    )
  }
  return { url, at, format: r.format, samples }
}

/** GETs `<baseUrl><path>` within the deadline and parses it; any failure is a UserError naming the URL. */
export async function scrape(baseUrl: string, o: ScrapeOptions = {}): Promise<Scrape> {
  const url = new URL(o.path ?? '/metrics', baseUrl).toString()
  const input = o.input ?? 'canary-rules'
  let res
  try {
    res = await send({
      url,
      method: 'GET',
      headers: { Accept: ACCEPT, ...o.headers },
      timeoutMs: o.timeoutMs ?? 10_000,
      maxBodyBytes: o.maxBodyBytes ?? 16 * 1024 * 1024
    })
  } catch (e) {
    throw new UserError(
      `Could not scrape ${url} for '${input}': ${(e as Error).message}; make the service serve its metrics there (or set the metrics path).`
    )
  }
  if (res.status !== 200)
    throw new UserError(
      `Scraping ${url} for '${input}' answered ${res.status} ${res.statusText}; make the service serve its metrics there with status 200.`
    )
  const ct = res.headers['content-type']
  return parseScrape(res.body.toString('utf8'), Array.isArray(ct) ? ct[0] : ct, url, Date.now())
}

/**
 * The smoke inputs smoke-test and ship share, read once, parsed once and masked before anything logs: the
 * base URL (parsed; errors name the input it came from: smoke-test's `url`, ship's `smoke-url`), the
 * checks, the headers, the deadlines. The redactor filled here (URL userinfo, every header value) is the one
 * the checks run with.
 */
import * as core from '@actions/core'
import * as inputs from './inputs.js'
import { UserError } from '../lib/errors.js'
import { Redactor, displayUrl } from '../lib/redact.js'
import { parseChecks, parseHeaderLines, type Check } from '../lib/smoke/checks.js'
import { parseBaseUrl, smokeSecrets } from '../lib/smoke/run.js'

export interface SmokeInputs {
  url: URL
  /** the URL as the user wrote it, credentials hidden (displayUrl), for the log and the summary */
  display: string
  /** the input that named the URL, for error messages */
  urlInput: string
  checks: Check[]
  headers: Record<string, string>
  timeout: number
  requestTimeout: number
  insecureTls: boolean
  /** every secret of the URL and the headers (already masked with core.setSecret) */
  redactor: Redactor
}

/** The input names one action uses for the smoke group; absent ones take the fixed value given instead. */
export interface SmokeInputNames {
  url: string
  checks: string
  timeout: string
  /** secret header lines; absent: none */
  headers?: string
  /** absent: min(5, timeout) */
  requestTimeout?: string
  /** absent: false */
  insecureTls?: string
}

export const SMOKE_TEST_NAMES: SmokeInputNames = {
  url: 'url',
  checks: 'checks',
  timeout: 'timeout',
  headers: 'headers',
  requestTimeout: 'request-timeout',
  insecureTls: 'insecure-tls'
}

export const SHIP_SMOKE_NAMES: SmokeInputNames = {
  url: 'smoke-url',
  checks: 'smoke-checks',
  timeout: 'smoke-timeout'
}

export function readSmokeInputs(names: SmokeInputNames): SmokeInputs {
  // Secrets first: nothing is logged before every credential form is masked.
  const headers = names.headers ? parseHeaderLines(inputs.secret(names.headers)) : {}
  const rawUrl = inputs.str(names.url)
  const checksText = inputs.str(names.checks)
  const timeout = inputs.int(names.timeout, 60, { min: 1, max: 3600 })
  const requestTimeout = names.requestTimeout
    ? inputs.int(names.requestTimeout, 5, { min: 1, max: 600 })
    : Math.min(5, timeout)
  const insecureTls = names.insecureTls ? inputs.bool(names.insecureTls, false) : false
  const checks = parseChecks(checksText, names.checks)
  const redactor = smokeSecrets(new Redactor(), { url: rawUrl, headers, checks })
  for (const form of redactor.forms()) core.setSecret(form) // forms() already holds the base64 and URL-encoded forms
  if (rawUrl.trim() === '')
    throw new UserError(
      `Input '${names.url}' is required: the base URL of the deployment, e.g. '${names.url}: https://stage.example.com'.`
    )
  const url = parseBaseUrl(rawUrl, names.url)
  return {
    url,
    display: displayUrl(rawUrl.trim()),
    urlInput: names.url,
    checks,
    headers,
    timeout,
    requestTimeout,
    insecureTls,
    redactor
  }
}

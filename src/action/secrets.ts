/**
 * Every secret this run has masked, in one Redactor, for the texts the runner's log masking does not
 * cover: GitHub API payloads (Deployment statuses, commit statuses, check runs) and the job summary file.
 * inputs.maskSecret() fills it; redacted() applies it.
 */
import * as core from '@actions/core'
import { Redactor } from '../lib/redact.js'

export const secrets = new Redactor()

/** The text with every secret of the run (and any URL userinfo) replaced by `***`. */
export function redacted(text: string): string {
  return secrets.redact(text)
}

/**
 * Makes the job summary pass through the redactor: whatever an action adds, the buffer is redacted just
 * before it is written (one place for all actions; summary is @actions/core's singleton).
 */
export function redactSummaries(): void {
  const s = core.summary as typeof core.summary & { __shiplineRedacts?: boolean }
  if (s.__shiplineRedacts) return
  s.__shiplineRedacts = true
  const write = s.write.bind(s)
  s.write = async opts => {
    const text = s.stringify()
    s.emptyBuffer()
    s.addRaw(redacted(text))
    return write(opts)
  }
}

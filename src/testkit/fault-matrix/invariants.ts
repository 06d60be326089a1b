/**
 * The fault matrix's checker: what must hold on the host after a faulted run (checkInvariants), and the
 * run result it compares with the host.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { lastFinal, openTransaction, parseJournal, type JournalEntry } from '../../lib/release/journal.js'
import { sleep } from '../net.js'
import { currentRelease, releaseVersion, serving, stateDir, waitLockFree, type Serve } from './host.js'

export interface RunResult {
  status: string
  error?: string
  /** the library threw (a UserError) instead of returning a result */
  threw?: boolean
  hosts?: { status: string; message?: string }[]
}

export interface CheckOptions {
  kind: 'deploy' | 'rollback'
  serve: Serve
  /** the release live before the faulted run */
  previous: string
  /** the release it tried to make live (deploy: the new one; rollback: the target) */
  attempted?: string
  /** what the run returned; undefined when the runner was killed */
  result?: RunResult
  expectStatus?: string
  /** both releases are broken on purpose (put-back fault): nothing serving is expected */
  allowOutage?: boolean
  lockWaitSec?: number
  serveWaitSec?: number
}

export interface CheckReport {
  ok: boolean
  /** e.g. `failed · v1 serves · current=v1 · last=recovered v1 · lock free` */
  outcome: string
  problems: string[]
  /** deployed / rolled-back / failed as the host shows it */
  hostStatus: string
  current?: string
  currentVersion?: string
  last?: JournalEntry
  served?: string
}

const ROLLED_BACK_EVENTS = ['auto-rollback', 'recovered', 'revert']

/**
 * Waits (bounded) for the lock to be free, then checks the host: the run dir is empty; every ledger line
 * parses, no transaction is left open and the last final entry names what `current` names; `current`
 * points at a release with a release.json; a healthy container serves exactly that release's version (for
 * blue-green through nginx); and the run's status matches the host (deployed ⇔ the last final entry is the
 * attempted release's `deploy` and current names it; rolled-back ⇔ the previous release is current and the
 * last final entry is auto-rollback/recovered/revert; failed otherwise, with a non-empty error).
 */
export async function checkInvariants(path: string, o: CheckOptions): Promise<CheckReport> {
  const problems: string[] = []
  const s = stateDir(path)
  const free = await waitLockFree(path, o.lockWaitSec ?? 90)
  if (!free) problems.push(`lock still held after ${o.lockWaitSec ?? 90}s`)
  let run: string[] = []
  try {
    run = readdirSync(join(s, 'run'))
  } catch {
    /* none */
  }
  if (free && run.length) problems.push(`run/ holds ${run.join(', ')} with the lock free`)

  let entries: JournalEntry[] = []
  try {
    const j = parseJournal(readFileSync(join(s, 'ledger.jsonl'), 'utf8'))
    entries = j.entries
    if (j.damaged.length)
      problems.push(
        `ledger lines that do not parse: ${j.damaged.map(d => `${d.line}: ${d.text.slice(0, 80)}`).join('; ')}`
      )
  } catch {
    problems.push('no ledger')
  }
  const open = openTransaction(entries)
  if (open)
    problems.push(`ledger ends on an open transaction (begin ${open.txn ?? ''} of ${open.attempted ?? '?'})`)
  const last = lastFinal(entries)
  const current = currentRelease(path)
  const currentVersion = releaseVersion(path, current)
  if (!current) problems.push('current names nothing')
  else if (!currentVersion) problems.push(`current names ${current}, which has no release.json`)
  if (!last) problems.push('no final ledger entry')
  else if (last.release !== current)
    problems.push(
      `last final entry (${last.event} ${last.version ?? ''} ${last.release}) is not what current names (${current})`
    )
  else if (last.version && currentVersion && last.version !== currentVersion)
    problems.push(`last final entry says version ${last.version}, current's release.json ${currentVersion}`)

  // what serves (bounded wait: a recovered container may still be starting its healthcheck)
  const end = Date.now() + (o.serveWaitSec ?? 20) * 1000
  let seen = await serving(path, o.serve)
  while (!(seen.version === currentVersion && seen.healthy) && Date.now() < end) {
    await sleep(500)
    seen = await serving(path, o.serve)
  }
  const outage = !seen.version || /^HTTP /.test(seen.version)
  if (outage && o.allowOutage) {
    /* both releases broken on purpose */
  } else if (!currentVersion || seen.version !== currentVersion)
    problems.push(
      `serves ${seen.version || 'nothing'} (${seen.detail}), current is ${currentVersion ?? 'nothing'}`
    )
  else if (!seen.healthy) problems.push(`${seen.version} serves but is not healthy (${seen.detail})`)

  // the status the host shows
  let hostStatus = 'failed'
  const v = (id?: string): string => releaseVersion(path, id) ?? id ?? '?'
  if (o.kind === 'deploy') {
    if (o.attempted && current === o.attempted && last?.event === 'deploy' && last.release === o.attempted)
      hostStatus = 'deployed'
    else if (current === o.previous && last && ROLLED_BACK_EVENTS.includes(last.event))
      hostStatus = 'rolled-back'
  } else if (
    o.attempted &&
    current === o.attempted &&
    last?.event === 'rollback' &&
    last.release === o.attempted
  )
    hostStatus = 'rolled-back'
  if (o.result) {
    if (o.result.status !== hostStatus)
      problems.push(
        `status ${o.result.status}, the host shows ${hostStatus}${o.result.error ? ` (error: ${o.result.error.slice(0, 160)})` : ''}`
      )
    if (o.result.status === 'failed' && !o.result.error?.trim())
      problems.push('status failed with an empty error')
    const h = o.result.hosts?.[0]?.status
    if (h && h !== o.result.status && !(o.result.status === 'rolled-back' && h === 'reverted'))
      problems.push(`hosts[0].status ${h} differs from status ${o.result.status}`)
  }
  if (o.expectStatus && hostStatus !== o.expectStatus)
    problems.push(`expected ${o.expectStatus}, the host shows ${hostStatus}`)

  const parts = [
    o.result ? `${o.result.status}${o.result.threw ? ' (threw)' : ''}` : 'killed',
    outage ? (o.allowOutage ? 'nothing serves (both broken)' : 'nothing serves') : `${seen.version} serves`,
    `current=${currentVersion ?? current ?? 'none'}`,
    `last=${last ? `${last.event} ${v(last.release)}` : 'none'}`,
    free ? 'lock free' : 'LOCK HELD'
  ]
  return {
    ok: problems.length === 0,
    outcome: parts.join(' · '),
    problems,
    hostStatus,
    current,
    currentVersion,
    last,
    served: seen.version
  }
}

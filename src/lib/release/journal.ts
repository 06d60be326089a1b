/**
 * The release journal: `<path>/.shipline/ledger.jsonl`, one JSON object per line, append-only.
 *
 * Every deploy or rollback is a transaction (`txn`) the store journals *before* each irreversible step
 * (write-ahead): a `begin` entry (intent: the release attempted, the release live before), then exactly one
 * final entry (the outcome). The final entry's `release` is the release `current` names after it, and the
 * one that serves. A transaction whose runner or link died is closed by the lock holder on the host
 * (`recovered` when it put the previous release back, `aborted` when nothing live had changed yet), so a
 * journal whose lock is free never ends on an open `begin`.
 *
 * The reader tolerates a torn last line (a crash or a full disk during an append) and says so; the appender
 * on the host never glues a new line onto a torn one (it ends the file with a newline first).
 */
import type { CanaryRecord } from '../strategy/canary.js'

export type FinalEvent =
  /** the attempted release is current, healthy and serving */
  | 'deploy'
  | 'rollback'
  /** the attempted release failed; `release` (the one live before) is back and current */
  | 'auto-rollback'
  /** the attempted release failed and nothing could be put back; `release` is what `current` names */
  | 'failed'
  /** a fleet: this host had switched, another host failed, so this host went back to `release` */
  | 'revert'
  /** the lock holder put `release` back after the deploy's connection died */
  | 'recovered'
  /** the transaction ended before anything live changed (connection lost, runner killed, a step failed) */
  | 'aborted'

/**
 * `begin` opens a transaction; `maintenance` stands alone (outside any transaction, under the lock): the
 * project's nginx maintenance page was switched on or off (`maintenance`), `release` is what `current` names.
 */
export type JournalEvent = 'begin' | 'maintenance' | FinalEvent

/** A command shipline ran for a release (release command, backup, hook): what the ledger keeps of it. */
export interface CommandRecord {
  /** release-command: the service whose new image ran it; empty for host commands */
  service?: string
  command: string
  /** the exit code (null: killed at its time limit, or the link died) */
  exit: number | null
  durationMs: number
  /** the last lines of its output (stdout and stderr), masked by the action layer before any log */
  tail: string
  /** backup-command: the folder it wrote into (kept as long as the release is kept) */
  dir?: string
}

const FINAL_EVENTS: readonly FinalEvent[] = [
  'deploy',
  'rollback',
  'auto-rollback',
  'failed',
  'revert',
  'recovered',
  'aborted'
]

export interface JournalEntry {
  time: string
  event: JournalEvent
  /** the transaction this entry belongs to (entries written before journaling began have none) */
  txn?: string
  /** deploy or rollback */
  kind?: 'deploy' | 'rollback'
  /** the release live after this event ('' when none); for `begin`, the release live before */
  release: string
  version?: string
  /** the release that was live before `release` (what a default rollback goes back to) */
  from?: string
  fromVersion?: string
  /** the release this transaction tried to make live */
  attempted?: string
  attemptedVersion?: string
  actor?: string
  runUrl?: string
  images?: Record<string, string>
  reason?: string
  /** `maintenance` entries: the state it was switched to */
  maintenance?: 'on' | 'off'
  /** the release command run for this release (deploys on the canary host), ok or not */
  releaseCommand?: CommandRecord
  /** the backup taken before the release command */
  backup?: CommandRecord
  /** the probe's checks before the switch (deploys with probe-checks), passed or not */
  probe?: { port: number; passed: boolean; durationMs: number; checks: string[] }
  /** the weighted canary's steps before the switch (deploys with canary-steps), passed or not */
  canary?: CanaryRecord
}

export interface ParsedJournal {
  entries: JournalEntry[]
  /** lines that did not parse (a torn last line, a damaged line), with their 1-based line numbers */
  damaged: { line: number; text: string }[]
}

/** Parses journal text line by line; a line that is not a JSON object is set aside, never fatal. */
export function parseJournal(text: string): ParsedJournal {
  const out: ParsedJournal = { entries: [], damaged: [] }
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (!line) return
    try {
      const e = JSON.parse(line) as unknown
      if (e && typeof e === 'object' && !Array.isArray(e) && typeof (e as JournalEntry).event === 'string')
        out.entries.push(e as JournalEntry)
      else out.damaged.push({ line: i + 1, text: line.slice(0, 200) })
    } catch {
      out.damaged.push({ line: i + 1, text: line.slice(0, 200) })
    }
  })
  return out
}

const isFinal = (e: JournalEntry): boolean => (FINAL_EVENTS as readonly string[]).includes(e.event)

/** The last transaction's entries still open (a `begin` with no final entry after it), if any. */
export function openTransaction(entries: JournalEntry[]): JournalEntry | undefined {
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]
    if (isFinal(e)) return undefined
    if (e.event === 'begin') return e
  }
  return undefined
}

/** The last final entry (the journal's word on what is live), if any. */
export function lastFinal(entries: JournalEntry[]): JournalEntry | undefined {
  for (let i = entries.length - 1; i >= 0; i--) if (isFinal(entries[i])) return entries[i]
  return undefined
}

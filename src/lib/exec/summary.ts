/**
 * exec's job summary (Markdown with a little HTML): one row per host (exit code, time, result), then each
 * host's first and last output lines in a collapsed block. Texts are escaped for HTML; the caller has
 * redacted them (and the action layer's summary passes through the run's redactor once more).
 */
import { headTail } from './output.js'
import { failureReason, type ExecResult, type HostExecResult } from './run.js'

const cell = (s: string | undefined): string =>
  (s ?? '').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const html = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A stream's first and last lines, for a <pre>. */
function excerpt(name: string, text: string, n: number): string {
  const { first, last, lines } = headTail(text, n)
  if (lines === 0) return `${name}: (empty)\n`
  const body = last.length
    ? [...first, `… ${lines - first.length - last.length} more line(s) …`, ...last]
    : first
  return `${name} (${lines} line${lines === 1 ? '' : 's'}):\n${body.map(l => l.slice(0, 500)).join('\n')}\n`
}

function details(h: HostExecResult, n: number): string {
  return [
    `<details><summary>${html(h.host)}: output</summary>`,
    '',
    `<pre>${html(excerpt('stdout', h.stdout, n) + '\n' + excerpt('stderr', h.stderr, n))}</pre>`,
    '',
    '</details>'
  ].join('\n')
}

export function execSummary(
  result: ExecResult,
  facts: { command: string; service?: string; path: string },
  linesEach = 5
): string {
  const n = result.hosts.length
  const failed = result.failed.length
  const title = failed
    ? `exec: failed on ${failed} of ${n} host${n === 1 ? '' : 's'}`
    : `exec: ok on ${n} host${n === 1 ? '' : 's'}`
  const cmd = facts.command.split('\n')[0].slice(0, 200) + (facts.command.includes('\n') ? ' …' : '')
  const lines = [
    `### ${title}`,
    '',
    `- **command**: <code>${cell(cmd)}</code>`,
    `- **where**: ${facts.service ? `service \`${cell(facts.service)}\` of the current release` : 'on the host'}, path ${cell(facts.path)}`,
    '',
    '| host | exit code | time | release | result |',
    '|---|---|---|---|---|'
  ]
  for (const h of result.hosts)
    lines.push(
      `| ${cell(h.host)} | ${h.exitCode === null ? '—' : h.exitCode} | ${(h.durationMs / 1000).toFixed(1)}s | ${cell(h.version ?? '—')} | ${h.ok ? 'ok' : cell(failureReason(h))}${h.truncated ? ' (output capped)' : ''} |`
    )
  for (const h of result.hosts) if (h.stdout || h.stderr) lines.push('', details(h, linesEach))
  return lines.join('\n') + '\n'
}

/** Markdown for the job summary: one row per host. */
import type { HostResult } from './types.js'

const cell = (s: string | undefined): string => (s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ')

export function summaryTable(title: string, hosts: HostResult[], extra: [string, string][] = []): string {
  const lines = [`### ${title}`, '']
  for (const [k, v] of extra) lines.push(`- **${cell(k)}**: ${cell(v)}`)
  if (extra.length) lines.push('')
  lines.push(
    '| host | status | release | version | previous | time | note |',
    '|---|---|---|---|---|---|---|'
  )
  for (const h of hosts) {
    lines.push(
      `| ${cell(h.host)} | ${h.status} | ${cell(h.releaseId)} | ${cell(h.version)} | ${cell(h.previousVersion)} | ${(h.durationMs / 1000).toFixed(1)}s | ${cell(h.message)} |`
    )
  }
  const envs = hosts.filter(h => h.env)
  if (envs.length) {
    lines.push('')
    for (const h of envs) lines.push(`- **${cell(h.host)}** \`.env\`: ${cell(h.env)}`)
  }
  const ran = hosts.flatMap(h => (h.commands ?? []).map(c => ({ host: h.host, ...c })))
  if (ran.length) {
    lines.push('', '| host | command | ran | exit | time |', '|---|---|---|---|---|')
    for (const c of ran)
      lines.push(
        `| ${cell(c.host)} | ${c.name}${c.record.service ? ` (${cell(c.record.service)})` : ''} | \`${cell(c.record.command).replace(/`/g, "'")}\` | ${c.ok ? 'ok' : c.record.exit === null ? 'stopped' : `failed (${c.record.exit})`} | ${(c.record.durationMs / 1000).toFixed(1)}s |`
      )
    for (const c of ran.filter(x => x.record.tail))
      lines.push(
        '',
        `<details><summary>${cell(c.host)}: ${c.name}, last output lines</summary>`,
        '',
        '```',
        c.record.tail.slice(-4000),
        '```',
        '',
        '</details>'
      )
  }
  const logs = hosts.filter(h => h.logs)
  for (const h of logs)
    lines.push(
      '',
      `<details><summary>${cell(h.host)}: last log lines</summary>`,
      '',
      '```',
      h.logs!.slice(-4000),
      '```',
      '',
      '</details>'
    )
  return lines.join('\n') + '\n'
}

/** Renders smoke results as Markdown (job summary, check-run output) and as a one-line verdict. */
import type { CheckResult } from './run.js'

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ')

export function resultsTable(results: CheckResult[]): string {
  const rows = results.map(r =>
    [
      `\`${cell(r.path)}\``,
      r.ok ? '✅ pass' : '❌ fail',
      r.status === null ? '–' : String(r.status),
      r['latency-ms'] === null ? '–' : `${r['latency-ms']} ms`,
      String(r.attempts),
      r.error ? cell(r.error) : ''
    ].join(' | ')
  )
  return [
    '| check | result | status | latency | attempts | reason |',
    '|---|---|---|---|---|---|',
    ...rows.map(r => `| ${r} |`)
  ].join('\n')
}

export function verdict(results: CheckResult[], durationMs: number): string {
  const failed = results.filter(r => !r.ok)
  const secs = (durationMs / 1000).toFixed(1)
  if (failed.length === 0) return `all ${results.length} checks passed in ${secs}s`
  return `${failed.length} of ${results.length} checks failed in ${secs}s: ${failed.map(f => f.path).join(', ')}`
}

export function summaryMarkdown(target: string, results: CheckResult[], durationMs: number): string {
  return `## Smoke test ${results.every(r => r.ok) ? 'passed' : 'failed'}: ${cell(target)}\n\n${verdict(results, durationMs)}\n\n${resultsTable(results)}\n`
}

/**
 * The metrics gate's figures as Markdown for the job summary: a table (one row per canary step: each rule's
 * new and old figure, the verdict) and a Mermaid `xychart-beta` line chart per rule (GitHub renders Mermaid
 * blocks): new slot, old slot and the threshold across the steps.
 */
import { fmt, type Figure, type RuleResult } from './gate.js'

export interface StepFigures {
  /** the new slot's traffic weight in this step, 0..100 */
  percent: number
  results: RuleResult[]
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ')

/** A figure in a cell: the number, `>1` above the largest bucket, `no data`, `n/a`. */
function short(f: Figure | undefined): string {
  if (!f) return '–'
  if (f.missing) return 'n/a'
  if (f.value === null) return 'no data'
  return `${f.above ? '>' : ''}${fmt(f.value)}`
}

/** Rule ids in the order they first appear. */
const ruleIds = (steps: StepFigures[]): string[] => [...new Set(steps.flatMap(s => s.results.map(r => r.id)))]

export function gateTable(steps: StepFigures[]): string {
  const ids = ruleIds(steps)
  const head = ['step', ...ids.flatMap(id => [`${id} new`, `${id} old`]), 'verdict']
  const rows = steps.map(s => {
    const by = new Map(s.results.map(r => [r.id, r]))
    const cells = ids.flatMap(id => {
      const r = by.get(id)
      if (!r) return ['–', '–']
      const mark = r.verdict === 'fail' ? ' ❌' : r.verdict === 'no-data' ? ' ⚪' : ''
      return [`${short(r.new)}${mark}`, short(r.old)]
    })
    const failed = s.results.filter(r => !r.passed)
    const verdict = failed.length ? `❌ fail: ${failed.map(r => r.id).join(', ')}` : '✅ pass'
    return [`${s.percent}%`, ...cells, verdict]
  })
  return [head, head.map(() => '---'), ...rows].map(r => `| ${r.map(cell).join(' | ')} |`).join('\n')
}

/** A chart number: no data and n/a are drawn as 0 (xychart has no gaps; the table says which). */
const point = (f: Figure | undefined): string => (f && f.value !== null && !f.missing ? fmt(f.value) : '0')

/** One Mermaid xychart per rule: line 1 the new slot, line 2 the old slot, line 3 the threshold. */
export function gateChart(steps: StepFigures[], id: string): string {
  const rs = steps.map(s => s.results.find(r => r.id === id))
  const threshold = rs.find(r => r)?.threshold ?? 0
  return [
    '```mermaid',
    'xychart-beta',
    `  title "${id.replace(/"/g, "'")} per step"`,
    `  x-axis [${steps.map(s => `"${s.percent}%"`).join(', ')}]`,
    `  y-axis "${id.replace(/"/g, "'")}"`,
    `  line [${rs.map(r => point(r?.new)).join(', ')}]`,
    `  line [${rs.map(r => point(r?.old)).join(', ')}]`,
    `  line [${rs.map(() => fmt(threshold)).join(', ')}]`,
    '```'
  ].join('\n')
}

export function gateSummary(steps: StepFigures[], title = 'Canary metrics gate'): string {
  const failed = steps.flatMap(s => s.results.filter(r => !r.passed).map(r => `- ${s.percent}%: ${r.reason}`))
  const passed = failed.length === 0
  const charts = ruleIds(steps).map(id => gateChart(steps, id))
  return [
    `## ${cell(title)} ${passed ? 'passed' : 'failed'}`,
    '',
    gateTable(steps),
    '',
    ...(failed.length ? [...failed.map(cell), ''] : []),
    'Charts: first line the new slot, second the old slot, third the threshold (no data drawn as 0).',
    '',
    ...charts.flatMap(c => [c, ''])
  ].join('\n')
}

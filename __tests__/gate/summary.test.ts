import { describe, expect, it } from '@jest/globals'
import { evaluate, type Window } from '../../src/lib/gate/gate.js'
import { parseRules } from '../../src/lib/gate/rules.js'
import { parseScrape } from '../../src/lib/gate/scrape.js'
import { gateChart, gateSummary, gateTable, type StepFigures } from '../../src/lib/gate/summary.js'

const rules = parseRules('error-ratio: req_total{code="500"} / req_total < 1%\np95: lat < 0.3')

/** One step's window: ok and err requests, fast and slow observations (bucket 0.1, +Inf). */
const step = (percent: number, ok: number, err: number, fast: number, slow: number): StepFigures => {
  const text = (k: number): string =>
    `# TYPE req_total counter\nreq_total{code="200"} ${ok * k}\nreq_total{code="500"} ${err * k}\n` +
    `# TYPE lat histogram\nlat_bucket{le="0.1"} ${fast * k}\nlat_bucket{le="+Inf"} ${(fast + slow) * k}\n` +
    `lat_count ${(fast + slow) * k}\nlat_sum 0\n`
  const w = (k: number): Window => ({
    before: parseScrape(text(k), undefined, 'u', 0),
    after: parseScrape(text(k * 2), undefined, 'u', 30_000)
  })
  return { percent, results: evaluate(rules, w(1), w(10)) }
}

describe('gate summary', () => {
  const steps = [step(5, 100, 0, 100, 0), step(25, 0, 0, 0, 0), step(50, 90, 10, 10, 90)]

  it('a table: one row per step, new and old per rule, the verdict', () => {
    expect(gateTable(steps)).toBe(
      [
        '| step | error-ratio new | error-ratio old | p95 new | p95 old | verdict |',
        '| --- | --- | --- | --- | --- | --- |',
        '| 5% | 0 | 0 | 0.095 | 0.095 | ✅ pass |',
        '| 25% | no data ⚪ | no data | no data ⚪ | no data | ✅ pass |',
        '| 50% | 0.1 ❌ | 0.1 | >0.1 ❌ | >0.1 | ❌ fail: error-ratio, p95 |'
      ].join('\n')
    )
  })

  it('a Mermaid xychart per rule: new, old, threshold', () => {
    expect(gateChart(steps, 'error-ratio')).toBe(
      [
        '```mermaid',
        'xychart-beta',
        '  title "error-ratio per step"',
        '  x-axis ["5%", "25%", "50%"]',
        '  y-axis "error-ratio"',
        '  line [0, 0, 0.1]',
        '  line [0, 0, 0.1]',
        '  line [0.01, 0.01, 0.01]',
        '```'
      ].join('\n')
    )
  })

  it('the summary: heading, table, the failing reasons, the charts', () => {
    const md = gateSummary(steps)
    expect(md.split('\n')[0]).toBe('## Canary metrics gate failed')
    expect(md).toContain('- 50%: error-ratio 0.1 (10/100) > 0.01 (wanted < 0.01); old slot 0.1 (100/1000)')
    expect(md.match(/```mermaid/g)).toHaveLength(2)
    expect(gateSummary(steps.slice(0, 2)).split('\n')[0]).toBe('## Canary metrics gate passed')
  })
})

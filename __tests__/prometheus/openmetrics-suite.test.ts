/**
 * The OpenMetrics project's own parser test suite (vendored in __tests__/fixtures/openmetrics-parsers):
 * every case's verdict must equal its `shouldParse`, except where docs/prometheus.md's decision table says
 * otherwise for that case, with its reason. The table is read from the doc, so the doc and the test cannot
 * drift apart; each decision must name a real case that contradicts the suite and the rule that fires.
 */
import { describe, expect, test } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { RULES, validateExposition } from '../../src/lib/prometheus/validate.js'
import { OPENMETRICS } from './corpus.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const SUITE = join(ROOT, '__tests__', 'fixtures', 'openmetrics-parsers')

interface Case {
  name: string
  text: string
  shouldParse: boolean
}

const cases: Case[] = readdirSync(SUITE, { withFileTypes: true })
  .filter(d => d.isDirectory())
  .map(d => {
    const meta = JSON.parse(readFileSync(join(SUITE, d.name, 'test.json'), 'utf8')) as {
      type: string
      file: string
      shouldParse: boolean
    }
    expect(meta.type).toBe('text')
    return {
      name: d.name,
      text: readFileSync(join(SUITE, d.name, meta.file), 'utf8'),
      shouldParse: meta.shouldParse
    }
  })
  .sort((a, b) => a.name.localeCompare(b.name))

interface Decision {
  suite: 'parses' | 'rejects'
  ours: 'parses' | 'rejects'
  rule: string
  reason: string
}

/** The rows of the table under "## Decisions against the suite" in docs/prometheus.md. */
function decisions(): Map<string, Decision> {
  const doc = readFileSync(join(ROOT, 'docs', 'prometheus.md'), 'utf8')
  const section = doc.split(/^## /m).find(s => s.startsWith('Decisions against the suite'))
  if (!section) throw new Error('docs/prometheus.md has no "## Decisions against the suite" section')
  const out = new Map<string, Decision>()
  for (const line of section.split('\n')) {
    const cells = line
      .split('|')
      .slice(1, -1)
      .map(c => c.trim())
    if (cells.length !== 5 || !cells[0].startsWith('`')) continue
    const [name, suite, ours, rule, reason] = cells
    out.set(name.replace(/`/g, ''), {
      suite: suite as Decision['suite'],
      ours: ours as Decision['ours'],
      rule: rule.replace(/`/g, ''),
      reason
    })
  }
  return out
}

const table = decisions()

describe('OpenMetrics parser suite (OpenObservability/OpenMetrics tests/testdata/parsers)', () => {
  test('is all there: 211 cases, 44 that parse', () => {
    expect(cases).toHaveLength(211)
    expect(cases.filter(c => c.shouldParse)).toHaveLength(44)
  })

  test.each(cases.map(c => [c.name, c] as [string, Case]))('%s', (name, c) => {
    const errors = validateExposition(c.text, OPENMETRICS, { maxErrors: 1000 }).errors
    const decision = table.get(name)
    if (decision) {
      // a decision against the suite: it must contradict the suite, and the rule it names must fire
      expect(decision.suite).toBe(c.shouldParse ? 'parses' : 'rejects')
      expect(decision.ours).not.toBe(decision.suite)
      expect(errors.length === 0).toBe(decision.ours === 'parses')
      if (decision.ours === 'rejects') expect(errors.map(e => e.rule)).toContain(decision.rule)
      expect(decision.reason.length).toBeGreaterThan(40)
    } else {
      const verdict =
        errors.length === 0 ? 'parses' : `rejects (${errors.map(e => `${e.line}:${e.rule}`).join(', ')})`
      expect(verdict).toEqual(c.shouldParse ? 'parses' : expect.stringMatching(/^rejects/))
    }
  })

  test('every decision names a case of the suite and a rule', () => {
    const names = new Set(cases.map(c => c.name))
    for (const [name, d] of table) {
      expect(names.has(name)).toBe(true)
      if (d.ours === 'rejects') expect(Object.keys(RULES)).toContain(d.rule)
    }
    expect(table.size).toBeGreaterThan(0)
  })

  test('the rules each invalid case fires (reviewed snapshot: a case that starts failing for another reason shows here)', () => {
    const fired = Object.fromEntries(
      cases
        .filter(c => !c.shouldParse || table.has(c.name))
        .map(c => [
          c.name,
          [
            ...new Set(validateExposition(c.text, OPENMETRICS, { maxErrors: 1000 }).errors.map(e => e.rule))
          ].join(' ')
        ])
    )
    expect(fired).toMatchSnapshot()
  })
})

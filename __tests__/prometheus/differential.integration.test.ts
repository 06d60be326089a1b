/**
 * Differential tests against the real parsers (Debian's prometheus package):
 *
 * 1. `promtool check metrics` (text 0.0.4 only), on the fixture corpus, on /metrics of a real prometheus
 *    server and prometheus-node-exporter started here (neither Debian build serves OpenMetrics), and on 400
 *    seeded mutations of them:
 *      - whatever promtool rejects as invalid, we reject, with an error on the line promtool names;
 *      - where we reject and promtool accepts, every rule that fired is in STRICTER, with the reason.
 *    promtool's exit status: 0 = fine, 3 = lint problems only (missing HELP, counter naming…: not
 *    validity), 1 = its text parser rejected the exposition ("text format parsing error in line N: …").
 *
 * 2. The Prometheus server's own scrape parsers (OpenMetrics, and text, which is not promtool's parser):
 *    a local HTTP server serves every fixture and 300 mutations with its Content-Type, Prometheus scrapes
 *    them all, and its target health is the verdict:
 *      - whatever it fails to scrape, we reject;
 *      - for OpenMetrics, where we alone reject, every rule that fired is in STRICTER_OM, with the reason.
 *
 * Each allow-list entry must be earned: some input shows the reference accepting what that rule rejects.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { validateExposition } from '../../src/lib/prometheus/validate.js'
import { freePort, startProcess, waitForHttp, type Proc } from '../../src/testkit/net.js'
import { OPENMETRICS, TEXT, loadCorpus } from './corpus.js'

/** Our rules that promtool (2.42, text parser + lint) does not enforce, and why they are right. */
const STRICTER: Record<string, string> = {
  'type-lowercase': 'promtool upper-cases the type before looking it up; the format says lower case',
  'type-syntax': 'promtool takes "# TYPE" and "# TYPE name" without a type as a plain comment',
  'help-syntax': 'promtool takes "# HELP" without a metric name as a plain comment',
  'label-name-reserved': 'promtool refuses only __name__; the format reserves every label starting with __',
  'label-duplicate': 'promtool drops le/quantile from the label set, so le="1",le="2" passes there',
  'family-not-contiguous': 'promtool merges a family that comes back; the format wants one group per family',
  'series-duplicate':
    'promtool 2.42 does not look for duplicate series; Prometheus drops them at scrape time',
  'histogram-sample-name': 'promtool files a bare sample of a histogram family without complaint',
  'histogram-le-missing': 'promtool accepts a bucket without le',
  'histogram-le-invalid': 'promtool accepts le="NaN"; a NaN upper bound cannot be ordered',
  'histogram-le-order': 'promtool does not check that le increases',
  'histogram-bucket-decreasing': 'promtool does not check that buckets are cumulative',
  'histogram-inf-bucket': 'promtool does not require the +Inf bucket; the format does',
  'histogram-count-mismatch': 'promtool does not compare the +Inf bucket with _count',
  'summary-quantile-missing': 'promtool accepts a bare summary sample without quantile',
  'summary-quantile-range': 'promtool accepts any float as quantile; quantiles are in [0, 1]',
  'final-newline':
    'promtool lets a last line of only blanks go without \\n; the format: the last line ends with \\n',
  'type-unknown': 'promtool lets "# TYPE a gauge\\" (a backslash at the end) pass; the type is "gauge\\"',
  'label-value-utf8': 'U+FFFD in a decoded response means invalid UTF-8 on the wire',
  'timestamp-sign': "promtool takes -5 and +15; Prometheus' own scrape parser fails the scrape on them",
  'leading-whitespace':
    "promtool skips blanks before a sample; Prometheus' scrape parser fails the scrape on them"
}

interface PromtoolVerdict {
  rejected: boolean
  output: string
}

function promtool(text: string): PromtoolVerdict {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 })
  if (r.error)
    throw new Error(`promtool did not run (${r.error.message}); run scripts/setup-parts.sh to install it`)
  const output = `${r.stdout}${r.stderr}`.trim()
  if (r.status === 0 || r.status === 3) return { rejected: false, output }
  if (r.status === 1 && /text format parsing error|error while linting/.test(output))
    return { rejected: true, output }
  throw new Error(`unexpected promtool exit ${r.status}: ${output}`)
}

interface Row {
  id: string
  verdict: 'rejects' | 'accepts'
  ours: string[]
  problem?: string
}

/** Compares one text-format exposition; returns the row, with `problem` set when the invariant breaks. */
function compare(id: string, text: string): Row {
  const verdict = promtool(text)
  const errors = validateExposition(text, TEXT, { maxErrors: 1000 }).errors
  const ours = [...new Set(errors.map(e => e.rule))]
  const row: Row = { id, verdict: verdict.rejected ? 'rejects' : 'accepts', ours }
  if (verdict.rejected && ours.length === 0)
    row.problem = `promtool rejects (${verdict.output}) but we accept`
  // and we name the line promtool names ("text format parsing error in line N")
  const line = /parsing error in line (\d+)/.exec(verdict.output)?.[1]
  if (verdict.rejected && ours.length && line && !errors.some(e => e.line === Number(line)))
    row.problem = `promtool rejects line ${line} (${verdict.output}), our errors are on lines ${errors.map(e => e.line).join(', ')}`
  if (!verdict.rejected) {
    const unlisted = ours.filter(r => !(r in STRICTER))
    if (unlisted.length) row.problem = `promtool accepts but we fire ${unlisted.join(', ')}, not in STRICTER`
  }
  return row
}

/** "line N: …" of a text, for failure messages. */
function quoteLine(text: string, line: number): string {
  return `line ${line}: ${JSON.stringify(text.split('\n')[line - 1] ?? '')}`
}

/** Small deterministic PRNG (mulberry32) so the mutations are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = [
  '{',
  '}',
  '"',
  '=',
  ',',
  ' ',
  '\t',
  '\\',
  '\n',
  '#',
  '.',
  'e',
  '+',
  '-',
  '1',
  'a',
  '_',
  ':',
  'le',
  'Inf',
  'NaN',
  'x'
]

/** One mutation: delete, insert or replace a character, duplicate, drop or swap lines. */
function mutate(text: string, next: () => number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(next() * a.length)]
  const pos = Math.floor(next() * (text.length + 1))
  const lines = text.split('\n')
  const li = Math.floor(next() * lines.length)
  const lj = Math.floor(next() * lines.length)
  switch (Math.floor(next() * 7)) {
    case 0:
      return text.slice(0, pos) + text.slice(pos + 1)
    case 1:
    case 2:
      return text.slice(0, pos) + pick(ALPHABET) + text.slice(pos)
    case 3:
      return text.slice(0, pos) + pick(ALPHABET) + text.slice(pos + 1)
    case 4:
      lines.splice(li, 0, lines[li])
      return lines.join('\n')
    case 5:
      lines.splice(li, 1)
      return lines.join('\n')
    default:
      ;[lines[li], lines[lj]] = [lines[lj], lines[li]]
      return lines.join('\n')
  }
}

/** Keeps a capture small enough for many mutations: its first `n` lines (cut at a family boundary). */
function head(text: string, n: number): string {
  const lines = text.split('\n')
  let end = Math.min(n, lines.length)
  while (end < lines.length && !lines[end].startsWith('# HELP')) end++
  return lines.slice(0, end).join('\n') + '\n'
}

/**
 * Rules where Prometheus's own OpenMetrics scrape parser (2.42) ingests what we reject, and why we reject it.
 * That parser checks the syntax; most of the OpenMetrics semantics it leaves to the exposer.
 */
const STRICTER_OM: Record<string, string> = {
  'help-escape': 'the parser keeps HELP text as it is; the ABNF wants a character after every backslash',
  'help-after-samples': 'metadata after samples is ignored by the parser; OpenMetrics puts descriptors first',
  'type-duplicate': 'the parser lets a second TYPE override the first',
  'type-after-samples': 'the parser ingests samples without a TYPE and a late TYPE alike',
  'om-unit-duplicate': 'the parser lets a second UNIT override the first',
  'om-unit-after-samples': 'as for TYPE: a late UNIT is accepted by the parser',
  'family-not-contiguous': 'the parser does not track families across the exposition',
  'series-duplicate': 'Prometheus drops the duplicate at append time and still reports the scrape as up',
  'om-counter-total': 'the parser accepts any sample name under a counter TYPE',
  'om-counter-value': 'the parser does not look at values: a negative or NaN counter total is ingested',
  'om-sample-name': 'the parser accepts any sample name under a TYPE',
  'om-info-value': 'the parser does not check that info samples are 1',
  'om-stateset': 'the parser does not check stateset values or labels',
  'om-negative-count': 'the parser does not check histogram counts',
  'histogram-sample-name': 'the parser accepts a bare sample under a histogram TYPE',
  'histogram-le-order': 'the parser does not relate buckets to each other',
  'histogram-inf-bucket': 'the parser does not require the +Inf bucket',
  'histogram-count-mismatch': 'the parser does not compare the +Inf bucket with _count',
  'histogram-bucket-decreasing': 'the parser does not relate buckets to each other',
  'summary-quantile-range': 'the parser accepts any float as quantile',
  'summary-quantile-missing': 'the parser accepts a bare summary sample without quantile',
  'label-name-reserved':
    'Prometheus accepts __-prefixed labels from the exposition (relabelling may use them)',
  'help-duplicate': 'the parser lets a second HELP override the first; the spec allows one per family',
  'om-exemplar':
    "Prometheus' parser reads an exemplar on any sample; OpenMetrics defines them for counter totals and histogram buckets",
  'histogram-le-missing': 'the parser does not require le on _bucket samples',
  'om-interleaved':
    'the parser reads sample by sample; the spec: Metrics and MetricPoints MUST NOT be interleaved',
  'histogram-count-missing':
    'the parser does not pair _sum with _count; the spec: iff Sum is present, _count MUST appear',
  'histogram-sum-missing': 'the same pairing the other way: _count without _sum',
  'histogram-le-invalid':
    'the parser keeps an le that is no float as it is (normalising only those that parse); le is a number',
  'summary-quantile-invalid': 'as for le: a quantile that is no float is kept as a plain label value',
  'histogram-negative-le-sum':
    'the parser does not relate buckets to _sum; the spec: negative bounds and a sum MUST NOT go together',
  'histogram-le-inf':
    'the parser reads le as a float, so "+INF" passes; the spec: exposers MUST write +Inf (and the OpenMetrics suite rejects it)',
  'om-sum-value': 'the parser does not look at values: a NaN or negative _sum is ingested',
  'om-quantile-value': 'the parser does not look at values: a negative quantile value is ingested',
  'om-count-integer': 'the parser does not look at values: a bucket of 0.5 is ingested',
  'om-timestamp-order':
    'Prometheus appends what it can and still reports the scrape as up; the spec: MetricPoints MUST have increasing timestamps',
  'om-exemplar-length': 'Prometheus keeps exemplar labels of any length; the spec: at most 128 code points',
  'om-exemplar-value': 'the parser does not relate an exemplar to its bucket',
  'om-reserved-label': 'the parser does not check which samples carry le or quantile',
  'om-unit-type': 'the parser does not relate UNIT to TYPE',
  'om-name-clash': 'the parser does not relate family names to other families\u2019 sample names',
  'om-name-reserved': 'Prometheus accepts any metric name; the spec reserves names starting with _'
}

const procs: Proc[] = []
let dir = ''
let server: Server | undefined
const captured: { id: string; text: string; contentType: string }[] = []
/** Mutations per format for Prometheus to scrape; PROM_DIFF_MUTATIONS=2000 for a deeper (slower) run */
const SCRAPED_MUTATIONS = Number(process.env.PROM_DIFF_MUTATIONS ?? 200)
/** how long the scrape tests may take: Prometheus scrapes every target once a second */
const SCRAPE_TEST_MS = 90_000 + SCRAPED_MUTATIONS * 40

/** Expositions served to the real Prometheus for scraping, by path (/om/… OpenMetrics, /text/… text 0.0.4) */
const served = new Map<string, { text: string; contentType: string }>()
let promUrl = ''

beforeAll(async () => {
  const check = spawnSync('promtool', ['--version'])
  if (check.error || check.status !== 0) {
    throw new Error(
      "promtool is missing: run scripts/setup-parts.sh (it installs Debian's prometheus package)"
    )
  }
  for (const bin of ['prometheus', 'prometheus-node-exporter']) {
    if (spawnSync(bin, ['--version']).error) throw new Error(`${bin} is missing: run scripts/setup-parts.sh`)
  }
  dir = mkdtempSync(join(tmpdir(), 'prom-diff-'))

  // expositions for Prometheus to scrape: the whole corpus and mutations of its valid files
  const corpus = loadCorpus()
  const om = corpus.filter(f => f.format === 'openmetrics')
  for (const f of corpus) {
    const prefix = f.format === 'openmetrics' ? '/om/' : '/text/'
    served.set(prefix + f.id.replace(/[^a-zA-Z0-9.-]/g, '_'), { text: f.text, contentType: f.contentType })
  }
  // mutations: one edit, or two in a third of the cases
  const next = rng(7)
  const mutant = (base: string): string => {
    const once = mutate(base, next)
    return next() < 0.33 ? mutate(once, next) : once
  }
  const validOm = om.filter(f => f.valid && f.text.length > 10)
  const validText = corpus.filter(f => f.format === 'text' && f.valid && f.text.length > 0)
  for (let i = 0; i < SCRAPED_MUTATIONS; i++) {
    served.set(`/om/mutation-${i}`, {
      text: mutant(validOm[i % validOm.length].text),
      contentType: OPENMETRICS
    })
    served.set(`/text/mutation-${i}`, {
      text: mutant(validText[i % validText.length].text),
      contentType: TEXT
    })
  }
  server = createServer((req, res) => {
    const body = served.get(req.url ?? '')
    res.writeHead(body ? 200 : 404, { 'content-type': body?.contentType ?? 'text/plain' })
    res.end(body?.text ?? '')
  })
  await new Promise<void>(r => server!.listen(0, '127.0.0.1', r))
  const fixturePort = (server.address() as AddressInfo).port

  const targets = [...served.keys()].map(
    path =>
      `  - targets: ['127.0.0.1:${fixturePort}']\n    labels: {__metrics_path__: '${path}', fixture: '${path}'}`
  )
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n- job_name: om\n  static_configs:\n${targets.join('\n')}\n`
  )
  const promPort = await freePort()
  const nodePort = await freePort()
  procs.push(
    startProcess('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`
    ]),
    startProcess('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${nodePort}`])
  )
  promUrl = `http://127.0.0.1:${promPort}`
  await waitForHttp(`${promUrl}/-/ready`, 30_000, s => s === 200)
  await waitForHttp(`http://127.0.0.1:${nodePort}/metrics`, 30_000, s => s === 200)
  for (const [name, port] of [
    ['prometheus', promPort],
    ['node-exporter', nodePort]
  ] as const) {
    // both are asked for OpenMetrics first; these Debian builds answer with the text format
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' }
    })
    expect(res.status).toBe(200)
    captured.push({ id: name, text: await res.text(), contentType: res.headers.get('content-type') ?? '' })
  }
}, 60_000)

afterAll(async () => {
  await Promise.all(procs.map(p => p.stop()))
  await new Promise(r => (server ? server.close(r) : r(undefined)))
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('real expositions', () => {
  test('prometheus and node-exporter /metrics are valid to us and to promtool', () => {
    expect(captured.map(c => c.id)).toEqual(['prometheus', 'node-exporter'])
    for (const c of captured) {
      const r = validateExposition(c.text, c.contentType)
      expect({ id: c.id, format: r.format, errors: r.errors.slice(0, 5) }).toEqual({
        id: c.id,
        format: 'text-0.0.4',
        errors: []
      })
      expect(r.samples).toBeGreaterThan(50)
      expect(r.metricNames.has('go_goroutines')).toBe(true)
      expect(compare(c.id, c.text)).toMatchObject({ verdict: 'accepts', ours: [] })
    }
  })
})

interface Target {
  labels: Record<string, string>
  health: string
  lastError: string
}

/** Every served exposition with Prometheus' verdict once it has scraped them all. */
let scrapes:
  Promise<{ path: string; text: string; contentType: string; up: boolean; lastError: string }[]> | undefined
/** A failed scrape that says nothing about the exposition (a busy machine): wait for the next one. */
const TRANSPORT = /context deadline exceeded|connection refused|connection reset|server returned HTTP status/

function scraped(): NonNullable<typeof scrapes> {
  scrapes ??= (async () => {
    // every target scraped, and its last scrape a verdict on the exposition, not a timeout
    const limitMs = SCRAPE_TEST_MS - 20_000
    const deadline = Date.now() + limitMs
    for (;;) {
      const r = (await (await fetch(`${promUrl}/api/v1/targets?state=active`)).json()) as {
        data: { activeTargets: Target[] }
      }
      const targets = r.data.activeTargets
      const decided = targets.filter(
        t => t.health === 'up' || (t.health === 'down' && !TRANSPORT.test(t.lastError))
      )
      if (targets.length === served.size && decided.length === served.size) {
        return targets.map(t => ({
          path: t.labels.fixture,
          ...served.get(t.labels.fixture)!,
          up: t.health === 'up',
          lastError: t.lastError
        }))
      }
      if (Date.now() > deadline) {
        const stuck = targets.filter(t => !decided.includes(t)).slice(0, 3)
        throw new Error(
          `Prometheus decided ${decided.length} of ${served.size} targets in ${limitMs / 1000} s; e.g. ${JSON.stringify(stuck.map(t => [t.labels.fixture, t.health, t.lastError]))}`
        )
      }
      await new Promise(r => setTimeout(r, 500))
    }
  })()
  return scrapes
}

describe('against the real Prometheus scrape parsers', () => {
  test(
    'OpenMetrics: Prometheus fails the scrape ⇒ we reject; we reject alone ⇒ only STRICTER_OM rules',
    async () => {
      const rows = (await scraped())
        .filter(x => x.path.startsWith('/om/'))
        .map(x => {
          const errors = validateExposition(x.text, x.contentType, { maxErrors: 1000 }).errors
          const ours = [...new Set(errors.map(e => e.rule))]
          const row: Row = {
            id: `${x.path}: ${errors.length ? quoteLine(x.text, errors[0].line) : JSON.stringify(x.text.slice(0, 300))}`,
            verdict: x.up ? 'accepts' : 'rejects',
            ours
          }
          if (!x.up && ours.length === 0)
            row.problem = `Prometheus fails the scrape (${x.lastError}) but we accept`
          const unlisted = ours.filter(r => !(r in STRICTER_OM))
          if (x.up && unlisted.length)
            row.problem = `Prometheus scrapes it but we fire ${unlisted.join(', ')}, not in STRICTER_OM`
          return row
        })
      expect(rows.filter(r => r.problem).map(r => `${r.problem}: ${r.id}`)).toEqual([])
      expect(rows.filter(r => r.verdict === 'rejects').length).toBeGreaterThan(20)
      expect(rows.filter(r => r.verdict === 'accepts' && r.ours.length === 0).length).toBeGreaterThan(10)
      const earned = new Set(rows.filter(r => r.verdict === 'accepts').flatMap(r => r.ours))
      expect(Object.keys(STRICTER_OM).filter(r => !earned.has(r))).toEqual([])
    },
    SCRAPE_TEST_MS
  )

  test(
    "text 0.0.4 (its scrape parser is not promtool's): Prometheus fails the scrape ⇒ we reject",
    async () => {
      const rows = (await scraped()).filter(x => x.path.startsWith('/text/'))
      const missed = rows
        .filter(x => !x.up && validateExposition(x.text, x.contentType).errors.length === 0)
        .map(
          x =>
            `Prometheus fails the scrape (${x.lastError}) but we accept: ${x.path}: ${JSON.stringify(x.text.slice(0, 300))}`
        )
      expect(missed).toEqual([])
      expect(rows.filter(x => !x.up).length).toBeGreaterThan(20)
    },
    SCRAPE_TEST_MS
  )
})

describe('differential against promtool check metrics', () => {
  test('the text corpus: promtool rejects ⇒ we reject; we reject alone ⇒ only STRICTER rules', () => {
    const rows = loadCorpus()
      .filter(f => f.format === 'text')
      .map(f => compare(f.id, f.text))
    expect(rows.filter(r => r.problem).map(r => `${r.problem}: ${r.id}`)).toEqual([])
    // every STRICTER entry is earned: some fixture shows promtool accepting what that rule rejects
    const earned = new Set(rows.filter(r => r.verdict === 'accepts').flatMap(r => r.ours))
    expect(Object.keys(STRICTER).filter(r => !earned.has(r))).toEqual([])
    // and the corpus is not one-sided: promtool rejects a good share of it
    expect(rows.filter(r => r.verdict === 'rejects').length).toBeGreaterThan(30)
  })

  test('OpenMetrics fixtures are valid text only by accident, so they are compared with our text mode', () => {
    // promtool reads OpenMetrics as text 0.0.4: compare both in text mode (same invariant)
    const rows = loadCorpus()
      .filter(f => f.format === 'openmetrics')
      .map(f => compare(f.id, f.text))
    expect(rows.filter(r => r.problem).map(r => `${r.problem}: ${r.id}`)).toEqual([])
  })

  test('400 deterministic mutations of the corpus and the captures', () => {
    const seeds = [
      ...loadCorpus()
        .filter(f => f.format === 'text' && f.valid && f.text.length > 0)
        .map(f => f.text),
      ...captured.map(c => head(c.text, 60))
    ]
    const next = rng(20261122)
    const rows: Row[] = []
    for (let i = 0; i < 400; i++) {
      const base = seeds[i % seeds.length]
      let text = mutate(base, next)
      if (next() < 0.3) text = mutate(text, next)
      rows.push({
        ...compare(`mutation ${i}`, text),
        id: `mutation ${i}: ${JSON.stringify(text.slice(0, 400))}`
      })
    }
    expect(rows.filter(r => r.problem).map(r => `${r.problem}: ${r.id}`)).toEqual([])
    // the mutations exercise both sides
    expect(rows.filter(r => r.verdict === 'rejects').length).toBeGreaterThan(100)
    expect(rows.filter(r => r.verdict === 'accepts').length).toBeGreaterThan(50)
  })
})

test('OPENMETRICS content type selects OpenMetrics', () => {
  expect(validateExposition('# EOF\n', OPENMETRICS).format).toBe('openmetrics-1.0')
})

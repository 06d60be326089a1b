import { describe, expect, test } from '@jest/globals'
import {
  RULES,
  formatFromContentType,
  validateExposition,
  type ValidationResult
} from '../../src/lib/prometheus/validate.js'
import { OPENMETRICS, loadCorpus, type Fixture } from './corpus.js'

/** "line:rule" for each error, the compact form the cases below expect */
const found = (r: ValidationResult): string[] => r.errors.map(e => `${e.line}:${e.rule}`)
const text = (s: string): string[] => found(validateExposition(s))
const om = (s: string): string[] => found(validateExposition(s, OPENMETRICS))

describe('format from Content-Type', () => {
  test.each([
    [undefined, 'text-0.0.4'],
    ['', 'text-0.0.4'],
    ['text/plain; version=0.0.4; charset=utf-8', 'text-0.0.4'],
    ['text/plain', 'text-0.0.4'],
    ['application/json', 'text-0.0.4'],
    ['application/openmetrics-text; version=1.0.0; charset=utf-8', 'openmetrics-1.0'],
    ['Application/OpenMetrics-Text', 'openmetrics-1.0'],
    ['application/openmetrics-text', 'openmetrics-1.0']
  ])('%s → %s', (ct, format) => {
    expect(formatFromContentType(ct)).toBe(format)
    expect(validateExposition('', ct).format).toBe(format)
  })
})

describe('result', () => {
  test('counts families and samples and lists metric names', () => {
    const r = validateExposition(
      '# HELP h x\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n# HELP g y\ng 1\nu{a="1"} 1\nu{a="2"} 2\n'
    )
    expect(r.errors).toEqual([])
    expect(r.format).toBe('text-0.0.4')
    expect(r.families).toBe(3)
    expect(r.samples).toBe(6)
    expect([...r.metricNames].sort()).toEqual(['g', 'h', 'h_bucket', 'h_count', 'h_sum', 'u'])
    expect(r.errorCount).toBe(0)
    expect(r.truncated).toBe(false)
  })

  test('collects every error, sorted by line, capped at maxErrors (default 100)', () => {
    const bad = Array.from({ length: 150 }, (_, i) => `m${i} x\n`).join('')
    const r = validateExposition(bad)
    expect(r.errors).toHaveLength(100)
    expect(r.errorCount).toBe(150)
    expect(r.truncated).toBe(true)
    expect(r.errors.map(e => e.line)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1))
    const small = validateExposition(bad, undefined, { maxErrors: 3 })
    expect(small.errors).toHaveLength(3)
    expect(small.errorCount).toBe(150)
  })

  test('errors carry a rule id from RULES and a message', () => {
    const r = validateExposition('# TYPE h histogram\nh_bucket{le="1"} 1\n')
    expect(r.errors).toEqual([
      { line: 2, rule: 'histogram-inf-bucket', message: expect.stringContaining('le="+Inf"') }
    ])
    for (const e of r.errors) expect(Object.keys(RULES)).toContain(e.rule)
  })
})

describe('text format 0.0.4: rules with their lines', () => {
  test.each<[string, string, string[]]>([
    ['valid with everything', '# HELP a x\n# TYPE a gauge\na{b="c"} 1 123\n\n# comment\n', []],
    ['final newline', 'a 1\nb 2', ['2:final-newline']],
    ['metric name', 'ok 1\n9bad 1\n', ['2:metric-name']],
    ['label name', 'a{ok="1"} 1\na{0k="1"} 1\n', ['2:label-name']],
    ['reserved label', 'a{__x="1"} 1\n', ['1:label-name-reserved']],
    ['duplicate label', 'a 1\na{x="1",y="1",x="2"} 1\n', ['2:label-duplicate']],
    ['escape', 'a{x="\\\\ \\" \\n"} 1\na{x="\\d"} 1\n', ['2:label-value-escape']],
    ['unterminated value', 'a{x="1} 1\n', ['1:label-value-unterminated']],
    ['float value', 'a 1\nb one\n', ['2:value-float']],
    ['integer timestamp', 'a 1 1.5\nb 1 17\n', ['1:timestamp-integer']],
    ['trailing blanks', 'a 1\t\n', ['1:trailing-whitespace']],
    ['signed timestamp (Prometheus cannot scrape it)', 'a 1 5\nb 1 -5\n', ['2:timestamp-sign']],
    ['indented sample (Prometheus cannot scrape it)', 'a 1\n  b 1\n  # comment\n', ['2:leading-whitespace']],
    ['help duplicate', '# HELP a x\na 1\n# HELP a y\n', ['3:help-duplicate']],
    ['help escape', '# HELP a ok \\\\ \\n\n# HELP b bad \\t\n', ['2:help-escape']],
    ['type duplicate', '# TYPE a gauge\n# TYPE a counter\na 1\n', ['2:type-duplicate']],
    ['type before samples', 'a 1\n# TYPE a gauge\n', ['2:type-after-samples']],
    ['type lower case', '# TYPE a Gauge\na 1\n', ['1:type-lowercase']],
    ['type unknown', '# TYPE a stateset\na 1\n', ['1:type-unknown']],
    ['contiguous', 'a 1\nb 1\na{x="1"} 1\n', ['3:family-not-contiguous']],
    ['duplicate series', 'a{x="1",y="2"} 1\na{y="2",x="1"} 1\n', ['2:series-duplicate']],
    ['duplicate series, no labels', 'a 1\na 2\n', ['2:series-duplicate']],
    [
      'summary quantile range',
      '# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="2"} 1\n',
      ['3:summary-quantile-range']
    ],
    ['summary quantile missing', '# TYPE s summary\ns 1\n', ['2:summary-quantile-missing']],
    [
      'summary quantile not a float',
      '# TYPE s summary\ns{quantile="half"} 1\n',
      ['2:summary-quantile-invalid']
    ]
  ])('%s', (_title, input, expected) => {
    expect(text(input)).toEqual(expected)
  })

  test('histograms: +Inf bucket, _count, cumulative buckets, increasing le', () => {
    const ok = '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
    expect(text(ok)).toEqual([])
    expect(text('# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 3\nh_count 2\n')).toEqual([
      '2:histogram-inf-bucket'
    ])
    expect(text('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_count 3\n')).toEqual([
      '4:histogram-count-mismatch'
    ])
    expect(text('# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_count 2\n')).toEqual([
      '3:histogram-bucket-decreasing'
    ])
    expect(
      text('# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\n')
    ).toEqual(['3:histogram-le-order'])
    expect(text('# TYPE h histogram\nh_bucket{le="one"} 1\n')).toEqual(['2:histogram-le-invalid'])
    expect(text('# TYPE h histogram\nh_bucket 1\n')).toEqual(['2:histogram-le-missing'])
    expect(text('# TYPE h histogram\nh 1\n')).toEqual(['2:histogram-sample-name'])
  })

  test('histograms: each label set is its own series, whatever the label order', () => {
    const two =
      '# TYPE h histogram\n' +
      'h_bucket{a="1",le="1"} 5\nh_bucket{le="+Inf",a="1"} 5\nh_count{a="1"} 5\n' +
      'h_bucket{a="2",le="1"} 1\nh_bucket{a="2",le="+Inf"} 1\nh_count{a="2"} 2\n'
    expect(text(two)).toEqual(['7:histogram-count-mismatch'])
  })

  test('messages say what to fix', () => {
    const [crlf] = validateExposition('a 1\r\n').errors
    expect(crlf).toMatchObject({
      line: 1,
      rule: 'value-float',
      message: expect.stringContaining('carriage return')
    })
    const [om] = validateExposition('# TYPE i info\ni_info 1\n').errors
    expect(om.message).toContain('application/openmetrics-text')
  })

  test('an untyped family named like a bucket is not a histogram', () => {
    expect(text('x_bucket 1\nx_count 5\n')).toEqual([])
  })
})

describe('OpenMetrics 1.0: rules with their lines', () => {
  test.each<[string, string, string[]]>([
    ['minimal', '# EOF\n', []],
    ['float timestamps', '# TYPE a gauge\na 1 1520879607.789\n# EOF\n', []],
    ['EOF missing', '# TYPE a gauge\na 1\n', ['2:om-eof-missing']],
    ['after EOF', 'a 1\n# EOF\nb 1\n', ['3:om-after-eof']],
    ['blank line', 'a 1\n\n# EOF\n', ['2:om-blank-line']],
    ['free comment', '# hi\n# EOF\n', ['1:om-comment']],
    ['counter _total', '# TYPE c counter\nc_total 1\nc_created 1\n# EOF\n', []],
    ['counter bare', '# TYPE c counter\nc 1\n# EOF\n', ['2:om-counter-total']],
    ['counter negative', '# TYPE c counter\nc_total -1\n# EOF\n', ['2:om-counter-value']],
    ['unit suffix', '# TYPE a_bytes gauge\n# UNIT a_bytes seconds\n# EOF\n', ['2:om-unit-suffix']],
    ['help after samples', '# TYPE a gauge\na 1\n# HELP a x\n# EOF\n', ['3:help-after-samples']],
    ['exemplar on a gauge', '# TYPE g gauge\ng 1 # {a="1"} 1\n# EOF\n', ['2:om-exemplar']],
    ['text-only type', '# TYPE a untyped\na 1\n# EOF\n', ['1:type-unknown']],
    ['trailing comma', 'a{x="1",} 1\n# EOF\n', ['1:label-syntax']],
    ['bad timestamp', 'a 1 never\n# EOF\n', ['1:timestamp-invalid']],
    ['info value', '# TYPE b info\nb_info 1\nb_info{x="1"} 0\n# EOF\n', ['3:om-info-value']],
    ['MetricPoints told apart by timestamps', '# TYPE g gauge\ng 17.0 123\ng 18.0 456\n# EOF\n', []],
    [
      'MetricPoints with one timestamp',
      '# TYPE g gauge\ng 17.0 123\ng 18.0 123\n# EOF\n',
      ['3:series-duplicate']
    ],
    [
      '_sum without _count',
      '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\n# EOF\n',
      ['3:histogram-count-missing']
    ],
    [
      'interleaved Metrics',
      '# TYPE c counter\nc_total{a="1"} 1\nc_total{a="2"} 1\nc_created{a="1"} 1\n# EOF\n',
      ['4:om-interleaved']
    ],
    ['HELP needs the space', '# HELP a\n# HELP b \n# EOF\n', ['1:help-syntax']],
    ['exemplars on counters and buckets', '# TYPE c counter\nc_total 1 # {id="x"} 1 1.5\n# EOF\n', []]
  ])('%s', (_title, input, expected) => {
    expect(om(input)).toEqual(expected)
  })

  test('text format expositions are not OpenMetrics, and the reverse', () => {
    expect(om('a 1\n')).toEqual(['1:om-eof-missing'])
    expect(text('# TYPE c counter\nc_total 1\n# EOF\n')).toEqual([])
    expect(text('# TYPE i info\ni_info 1\n# EOF\n')).toEqual(['1:type-unknown'])
  })
})

describe('corpus', () => {
  const corpus = loadCorpus()

  test.each(corpus.filter(f => f.valid).map(f => [f.id, f] as [string, Fixture]))('%s is valid', (_id, f) => {
    expect(validateExposition(f.text, f.contentType).errors).toEqual([])
  })

  test.each(corpus.filter(f => !f.valid).map(f => [f.id, f] as [string, Fixture]))(
    '%s breaks its rule',
    (_id, f) => {
      expect(Object.keys(RULES)).toContain(f.rule)
      const rules = validateExposition(f.text, f.contentType).errors.map(e => e.rule)
      expect(rules).toContain(f.rule)
    }
  )

  test('what every fixture yields, line by line (reviewed snapshot)', () => {
    const table = Object.fromEntries(
      corpus.map(f => [
        f.id,
        validateExposition(f.text, f.contentType).errors.map(e => `${e.line}:${e.rule}`)
      ])
    )
    expect(table).toMatchSnapshot()
  })

  test('every rule has an invalid fixture', () => {
    const covered = new Set(corpus.filter(f => !f.valid).map(f => f.rule))
    expect(Object.keys(RULES).filter(r => !covered.has(r))).toEqual([])
  })
})

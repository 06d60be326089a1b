/**
 * A strict, single-pass validator for Prometheus expositions: the text format 0.0.4 and OpenMetrics 1.0.
 *
 * It walks the text once, line by line, with index arithmetic on the one input string (no per-line split,
 * no regular expressions but in onSample's unescaping); the only strings it makes are metric names and
 * series keys for the duplicate check. Every problem becomes an error naming its 1-based line and a stable
 * rule id (see RULES); it keeps going after an error and collects up to `maxErrors` of them.
 *
 * A plain module: it knows nothing of @actions/core.
 */

export type ExpositionFormat = 'text-0.0.4' | 'openmetrics-1.0'

export interface ValidationError {
  line: number
  rule: string
  message: string
}

export interface ValidationResult {
  format: ExpositionFormat
  /** empty = valid; sorted by line; at most `maxErrors` entries */
  errors: ValidationError[]
  /** distinct metric families (named by HELP/TYPE/UNIT lines or by samples) */
  families: number
  /** sample lines */
  samples: number
  /** sample names and family names seen, for require-metrics */
  metricNames: Set<string>
  /** all errors found, also those beyond the cap */
  errorCount: number
  /** true when errorCount > errors.length */
  truncated: boolean
}

export interface ValidateOptions {
  /** stop recording errors after this many (scanning goes on to count them); default 100 */
  maxErrors?: number
  /**
   * Called with every sample line whose value parsed, in order (the metrics gate reads the values this
   * way: one parser for validation and values). Use the samples only when the result has no errors.
   */
  onSample?: (s: ParsedSample) => void
}

/** One sample line, as `onSample` gets it. */
export interface ParsedSample {
  /** the sample's name as written: http_requests_total, http_request_duration_seconds_bucket */
  name: string
  /** the family it belongs to (http_request_duration_seconds for its _bucket samples) */
  family: string
  /** the family's declared type, lower case; '' when it has no (valid) TYPE line */
  type: string
  /** label values unescaped (\\ \" \n, as Prometheus' parsers read them; an undefined escape stays as written) */
  labels: Record<string, string>
  value: number
}

/** Rule ids (stable: tests, the smoke-test report and users rely on them) and what each checks. */
export const RULES = {
  'final-newline': 'the exposition ends with a line feed',
  'byte-order-mark': 'no byte order mark before the first line',
  'metric-name': 'metric names match [a-zA-Z_:][a-zA-Z0-9_:]*',
  'label-name': 'label names match [a-zA-Z_][a-zA-Z0-9_]*',
  'label-name-reserved': 'label names starting with __ are reserved',
  'label-duplicate': 'a label name appears once per sample',
  'label-syntax': 'label sets are {name="value",...}',
  'label-value-escape':
    'text format: label values use only the escapes \\\\ \\" \\n (OpenMetrics: a backslash before any character)',
  'label-value-unterminated': 'label values end with a quote on the same line',
  'label-value-utf8': 'label values are valid UTF-8 (U+FFFD marks bytes that were not)',
  'value-float': 'sample values are floats (Go ParseFloat syntax, +Inf, -Inf, NaN)',
  'timestamp-integer': 'text format: timestamps are integer milliseconds (int64)',
  'timestamp-invalid': 'OpenMetrics: timestamps are numbers of seconds',
  'timestamp-sign': 'text format: timestamps are plain digits, as Prometheus scrapes them (no sign)',
  'leading-whitespace': 'text format: sample lines do not start with blanks (Prometheus cannot scrape them)',
  'trailing-whitespace': 'nothing, not even blanks, after the value or timestamp',
  'sample-syntax': 'a sample line is name[{labels}] value [timestamp]',
  'help-syntax': 'HELP lines are # HELP name text',
  'help-escape':
    'text format: HELP text uses only the escapes \\\\ and \\n (OpenMetrics: a backslash before any character, none at the end)',
  'help-duplicate': 'one HELP line per family',
  'help-after-samples': 'OpenMetrics: HELP comes before the family\u2019s samples',
  'type-syntax': 'TYPE lines are # TYPE name type',
  'type-unknown': 'the type is a known one',
  'type-lowercase': 'the type is written in lower case',
  'type-duplicate': 'one TYPE line per family',
  'type-after-samples': 'TYPE comes before the family\u2019s samples',
  'family-not-contiguous': 'all lines of a family form one group',
  'series-duplicate': 'no two samples with the same name and label set',
  'histogram-sample-name': 'histogram samples are name_bucket, name_sum, name_count',
  'histogram-le-missing': 'histogram buckets carry an le label',
  'histogram-le-invalid': 'le is a float',
  'histogram-le-order': 'le increases strictly within a series',
  'histogram-bucket-decreasing': 'bucket counts are cumulative: they never decrease as le grows',
  'histogram-inf-bucket': 'every histogram series has an le="+Inf" bucket',
  'histogram-count-mismatch': 'the +Inf bucket equals name_count',
  'histogram-count-missing': 'OpenMetrics: a histogram series with _sum also has _count',
  'summary-quantile-missing': 'summary quantile samples carry a quantile label',
  'summary-quantile-invalid': 'quantile is a float',
  'summary-quantile-range': 'quantile is within [0, 1]',
  'om-eof-missing': 'OpenMetrics: the exposition ends with # EOF',
  'om-after-eof': 'OpenMetrics: nothing after # EOF',
  'om-blank-line': 'OpenMetrics: no blank lines',
  'om-comment': 'OpenMetrics: # lines are HELP, TYPE, UNIT or EOF',
  'om-whitespace': 'OpenMetrics: tokens are separated by exactly one space, no leading or trailing blanks',
  'om-counter-total': 'OpenMetrics: counter samples are name_total (and name_created)',
  'om-counter-value': 'OpenMetrics: counter totals are not negative and not NaN',
  'om-sample-name': 'OpenMetrics: sample names fit the family type (e.g. info: name_info)',
  'om-unit-syntax': 'OpenMetrics: UNIT lines are # UNIT name unit',
  'om-unit-duplicate': 'OpenMetrics: one UNIT line per family',
  'om-unit-after-samples': 'OpenMetrics: UNIT comes before the family\u2019s samples',
  'om-unit-suffix': 'OpenMetrics: the family name ends with _<unit>',
  'om-info-value': 'OpenMetrics: info samples have the value 1',
  'om-stateset': 'OpenMetrics: stateset samples are 0 or 1 and carry a label named after the family',
  'om-negative-count': 'OpenMetrics: histogram and summary counts and buckets are not negative or NaN',
  'om-interleaved': 'OpenMetrics: the samples of one Metric (label set) are not interleaved with others',
  'om-exemplar': 'OpenMetrics: exemplars only on counter _total and histogram _bucket samples',
  'om-exemplar-syntax': 'OpenMetrics: an exemplar is # {labels} value [timestamp]',
  'om-exemplar-length':
    'OpenMetrics: an exemplar\u2019s label names and values total at most 128 code points',
  'om-exemplar-value': 'OpenMetrics: a bucket\u2019s exemplar value lies within that bucket',
  'om-timestamp-order':
    'OpenMetrics: the MetricPoints of one Metric carry increasing timestamps, all of them or none',
  'om-sum-value':
    'OpenMetrics: histogram and summary _sum are not NaN or negative; a gaugehistogram _gsum is not NaN, and negative only beside negative buckets',
  'om-quantile-value': 'OpenMetrics: summary quantile values are not negative (NaN is allowed)',
  'om-count-integer': 'OpenMetrics: histogram buckets and counts and summary counts are whole numbers',
  'histogram-sum-missing':
    'OpenMetrics: a histogram series with _count also has _sum (gaugehistogram: _gcount, _gsum)',
  'histogram-negative-le-sum': 'OpenMetrics: a histogram with a negative bucket bound has no _sum',
  'histogram-le-inf': 'OpenMetrics: the +Inf bucket is written le="+Inf", exactly',
  'om-reserved-label':
    'OpenMetrics: le only on histogram _bucket samples, quantile only on summary quantile samples',
  'om-unit-type': 'OpenMetrics: info and stateset families have no unit',
  'om-name-clash':
    'OpenMetrics: no family is named like a sample another family writes (a gauge a_created beside a counter a)',
  'om-name-reserved': 'OpenMetrics: family names do not start with an underscore',
  'om-carriage-return': 'OpenMetrics: lines end with \\n, never \\r\\n'
} as const

export type RuleId = keyof typeof RULES

/** `application/openmetrics-text` selects OpenMetrics 1.0; anything else (or nothing) the text format 0.0.4. */
export function formatFromContentType(contentType?: string): ExpositionFormat {
  if (!contentType) return 'text-0.0.4'
  const semi = contentType.indexOf(';')
  const mediaType = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
  return mediaType === 'application/openmetrics-text' ? 'openmetrics-1.0' : 'text-0.0.4'
}

export function validateExposition(
  text: string,
  contentType?: string,
  options: ValidateOptions = {}
): ValidationResult {
  const format = formatFromContentType(contentType)
  const v = new Validator(text, format === 'openmetrics-1.0', options.maxErrors ?? 100, options.onSample)
  v.run()
  v.errors.sort((a, b) => a.line - b.line)
  return {
    format,
    errors: v.errors,
    families: v.families.size,
    samples: v.sampleCount,
    metricNames: v.metricNames,
    errorCount: v.errorCount,
    truncated: v.errorCount > v.errors.length
  }
}

// ---- character classes -------------------------------------------------------------------------------

const NL = 10
const SP = 32
const TAB = 9
const HASH = 35
const LBRACE = 123
const RBRACE = 125
const EQ = 61
const QUOTE = 34
const BS = 92
const COMMA = 44

const M_START = 1
const M_CHAR = 2
const L_START = 4
const L_CHAR = 8
const CT = new Uint8Array(128)
for (let c = 0; c < 128; c++) {
  const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95
  const digit = c >= 48 && c <= 57
  if (alpha) CT[c] = M_START | M_CHAR | L_START | L_CHAR
  else if (digit) CT[c] = M_CHAR | L_CHAR
  else if (c === 58) CT[c] = M_START | M_CHAR
}

const TEXT_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])
const OM_TYPES = new Set([
  'counter',
  'gauge',
  'histogram',
  'gaugehistogram',
  'summary',
  'info',
  'stateset',
  'unknown'
])

// sample kinds: which part of a family a sample is
const K_BARE = 0
const K_BUCKET = 1
const K_COUNT = 2
const K_SUM = 3
const K_TOTAL = 4
const K_CREATED = 5
const K_GCOUNT = 6
const K_GSUM = 7
const K_INFO = 8

const OM_SUFFIXES: [string, number][] = [
  ['_total', K_TOTAL],
  ['_created', K_CREATED],
  ['_bucket', K_BUCKET],
  ['_count', K_COUNT],
  ['_sum', K_SUM],
  ['_gcount', K_GCOUNT],
  ['_gsum', K_GSUM],
  ['_info', K_INFO]
]

const SUFFIX_OF: string[] = []
for (const [suffix, kind] of OM_SUFFIXES) SUFFIX_OF[kind] = suffix

/** OpenMetrics: the sample kinds each type allows */
const OM_ALLOWED: Record<string, number[]> = {
  counter: [K_TOTAL, K_CREATED],
  gauge: [K_BARE],
  unknown: [K_BARE],
  stateset: [K_BARE],
  info: [K_INFO],
  histogram: [K_BUCKET, K_COUNT, K_SUM, K_CREATED],
  gaugehistogram: [K_BUCKET, K_GCOUNT, K_GSUM],
  summary: [K_BARE, K_COUNT, K_SUM, K_CREATED]
}

interface Group {
  lastLe: number
  lastCount: number
  lastBucketLine: number
  hasInf: boolean
  inf: number
  hasCount: boolean
  count: number
  countLine: number
  sumLine: number
  sum: number
  /** a bucket with a negative upper bound was seen */
  negativeLe: boolean
  /** text format: where each bucket's le value starts and ends in the text (the duplicate check for buckets, consulted on an le-order error only) */
  les: number[] | null
  firstLine: number
}

interface Family {
  name: string
  /** declared type, lower case; '' when the family has no (valid) TYPE line */
  type: string
  typeLine: number
  helpLine: number
  unitLine: number
  unit: string
  samples: number
  closed: boolean
  /** series keys seen in the current run of the family (created on its first sample) */
  series: Set<string> | null
  /** the only series key while the family has one */
  firstSeries: string | null
  groups: Map<string, Group> | null
  /** the group of the last histogram sample (most samples continue the group before them) */
  lastGroupKey: string | null
  lastGroup: Group | null
  /** OpenMetrics: label sets (without le/quantile) seen, and the current one */
  metrics: Set<string> | null
  lastMetric: string | null
  /** OpenMetrics: the last timestamp of each series that carried one (created on the first) */
  times: Map<string, number> | null
}

function isBlank(c: number): boolean {
  return c === SP || c === TAB
}

function clip(s: string, max: number): string {
  return s.length > max ? s.slice(0, max) + '\u2026' : s
}

/** A token from the input, quoted and escaped for a message. */
function show(s: string, max = 60): string {
  return JSON.stringify(clip(s, max))
}

class Validator {
  readonly errors: ValidationError[] = []
  errorCount = 0
  sampleCount = 0
  readonly metricNames = new Set<string>()
  readonly families = new Map<string, Family>()

  private cur: Family | null = null
  private line = 0
  private lastName = ''
  private lastFam: Family | null = null
  private lastKind = K_BARE
  // the current sample's label pairs, as offsets into text (value offsets exclude the quotes)
  private nLabels = 0
  private readonly lnS: number[] = []
  private readonly lnE: number[] = []
  private readonly lvS: number[] = []
  private readonly lvE: number[] = []
  /** label set written as name="value",... sorted, without blanks: its slice of text is a canonical key */
  private labelsCanonical = true
  private labelsOpen = -1
  private labelsClose = -1
  private nextBackslash = -1
  private nextReplacement = -1
  private readonly hasReplacement: boolean
  private valueNum = 0
  /** the current sample's timestamp (tsStart -1: none) */
  private tsStart = -1
  private tsEnd = -1
  /** the parsed le / quantile of the current sample */
  private specialValue = 0
  private labelsSorted = true
  /** OpenMetrics: where the current sample's exemplar starts (-1: none), and whether its kind may have one */
  private exemplarAt = -1
  private exemplarAllowed = false
  /** OpenMetrics: the current sample's timestamp in seconds */
  private tsValue = 0
  /** the current sample's le when it is a histogram bucket (an exemplar must not exceed it), else NaN */
  private exemplarLe = NaN
  /** exemplar labels: code points of names and values (labels() with store=false counts them) */
  private exemplarChars = 0
  /** OpenMetrics: sample names each family may write, for the clash check */
  private readonly claimed = new Map<string, Family>()

  constructor(
    private readonly text: string,
    private readonly om: boolean,
    private readonly maxErrors: number,
    private readonly onSample?: (s: ParsedSample) => void
  ) {
    this.hasReplacement = text.indexOf('\uFFFD') !== -1
  }

  private err(rule: RuleId, message: string, line = this.line): void {
    this.errorCount++
    if (this.errors.length < this.maxErrors) this.errors.push({ line, rule, message })
  }

  run(): void {
    const text = this.text
    const n = text.length
    const om = this.om
    let pos = 0
    let eofLine = 0
    if (text.charCodeAt(0) === 0xfeff) {
      this.err('byte-order-mark', 'the exposition starts with a byte order mark (U+FEFF); remove it', 1)
      pos = 1
    }
    if (om) {
      const cr = text.indexOf('\r\n')
      if (cr !== -1) {
        let line = 1
        for (let i = text.indexOf('\n'); i !== -1 && i < cr; i = text.indexOf('\n', i + 1)) line++
        this.err(
          'om-carriage-return',
          'lines end with \\r\\n (first here); OpenMetrics requires \\n line endings without \\r',
          line
        )
      }
    }
    while (pos < n) {
      let eol = text.indexOf('\n', pos)
      if (eol === -1) eol = n
      this.line++
      if (eofLine) {
        this.err('om-after-eof', `content after "# EOF" (line ${eofLine}); # EOF must be the last line`)
        break
      }
      const c = text.charCodeAt(pos)
      if (c === HASH) {
        if (this.comment(pos, eol)) eofLine = this.line
      } else if (isBlank(c)) {
        let p = pos + 1
        while (p < eol && isBlank(text.charCodeAt(p))) p++
        if (om)
          this.err(
            p === eol ? 'om-blank-line' : 'om-whitespace',
            p === eol ? 'blank line (OpenMetrics allows none)' : 'line starts with blanks'
          )
        if (p < eol) {
          if (text.charCodeAt(p) === HASH) {
            if (this.comment(p, eol)) eofLine = this.line
          } else {
            if (!om)
              this.err(
                'leading-whitespace',
                "sample line starts with blanks; Prometheus' scrape parser rejects it (promtool does not)"
              )
            this.sample(p, eol)
          }
        }
      } else if (pos === eol) {
        if (om) this.err('om-blank-line', 'blank line (OpenMetrics allows none)')
      } else {
        this.sample(pos, eol)
      }
      pos = eol + 1
    }
    if (this.cur) this.close(this.cur)
    if (om) {
      if (!eofLine)
        this.err(
          'om-eof-missing',
          'the exposition does not end with "# EOF"; OpenMetrics requires it as the last line',
          Math.max(this.line, 1)
        )
    } else if (n > 0 && text.charCodeAt(n - 1) !== NL) {
      this.err('final-newline', 'the last line does not end with a line feed (\\n)')
    }
  }

  // ---- families ----------------------------------------------------------------------------------------

  private family(name: string): Family {
    let f = this.families.get(name)
    if (!f) {
      f = {
        name,
        type: '',
        typeLine: 0,
        helpLine: 0,
        unitLine: 0,
        unit: '',
        samples: 0,
        closed: false,
        series: null,
        firstSeries: null,
        groups: null,
        lastGroupKey: null,
        lastGroup: null,
        metrics: null,
        lastMetric: null,
        times: null
      }
      this.families.set(name, f)
      this.metricNames.add(name)
      if (this.om) {
        if (name.charCodeAt(0) === 95)
          this.err(
            'om-name-reserved',
            `metric family ${show(name)} starts with "_"; OpenMetrics reserves such names: rename it`
          )
        this.claim(name, f)
      }
    }
    return f
  }

  /** Makes f the current family, closing the previous one; a closed family coming back is an error. */
  private enter(f: Family): void {
    if (this.cur === f) return
    if (this.cur) this.close(this.cur)
    if (f.closed) {
      this.err(
        'family-not-contiguous',
        `metric family ${show(f.name)} appears again after other families; keep all its lines together`
      )
      f.closed = false
    }
    this.cur = f
  }

  private close(f: Family): void {
    f.closed = true
    this.cur = null
    if (f.groups) {
      const countName = f.type === 'gaugehistogram' ? '_gcount' : '_count'
      for (const [gk, g] of f.groups) {
        const series = `${f.name}{${gk}}`
        if (!g.hasInf) {
          this.err(
            'histogram-inf-bucket',
            `histogram series ${series} has no le="+Inf" bucket${g.lastBucketLine ? ` (its last bucket is on line ${g.lastBucketLine})` : ''}`,
            g.lastBucketLine || g.firstLine
          )
        } else if (g.hasCount && g.inf !== g.count && !(Number.isNaN(g.inf) && Number.isNaN(g.count))) {
          this.err(
            'histogram-count-mismatch',
            `histogram series ${series}: ${f.name}${countName} is ${g.count} but the le="+Inf" bucket is ${g.inf}; they must be equal`,
            g.countLine
          )
        }
        if (this.om) {
          const sumName = f.name + (countName === '_count' ? '_sum' : '_gsum')
          if (g.sumLine && !g.hasCount)
            this.err(
              'histogram-count-missing',
              `histogram series ${series} has ${sumName} but no ${f.name}${countName}; OpenMetrics requires both or neither`,
              g.sumLine
            )
          else if (g.hasCount && !g.sumLine)
            this.err(
              'histogram-sum-missing',
              `histogram series ${series} has ${f.name}${countName} but no ${sumName}; OpenMetrics requires both or neither`,
              g.countLine
            )
          if (g.sumLine) {
            if (f.type === 'histogram' && g.negativeLe)
              this.err(
                'histogram-negative-le-sum',
                `histogram series ${series} has a bucket with a negative le and ${sumName}: a sum is no counter then; drop ${sumName} and ${f.name}_count, or serve it as a gaugehistogram`,
                g.sumLine
              )
            else if (Number.isNaN(g.sum) || (g.sum < 0 && !(f.type === 'gaugehistogram' && g.negativeLe)))
              this.err(
                'om-sum-value',
                `${sumName}${gk ? `{${gk}}` : ''} is ${g.sum}; it must not be ${Number.isNaN(g.sum) ? 'NaN' : 'negative'}${f.type === 'gaugehistogram' ? ' (negative only when a bucket bound is)' : ''}`,
                g.sumLine
              )
          }
        }
      }
      f.groups = null
      f.lastGroupKey = null
      f.lastGroup = null
    }
    // the duplicate check is per family; a family that comes back is an error of its own
    f.series = null
    f.firstSeries = null
    f.metrics = null
    f.lastMetric = null
    f.times = null
  }

  /**
   * OpenMetrics: records that family f writes samples named `name`; another family doing so is a clash
   * (a gauge a_created beside a counter a: a reader cannot tell whose sample a_created is).
   */
  private claim(name: string, f: Family): void {
    const other = this.claimed.get(name)
    if (other && other !== f)
      this.err(
        'om-name-clash',
        `metric family ${show(f.name)} would write samples named ${show(name)}, which is ${other.name === name ? 'the name of' : 'a sample name of'} family ${show(other.name)}; rename one of them`
      )
    else this.claimed.set(name, f)
  }

  // ---- comments and metadata ---------------------------------------------------------------------------

  /** A line starting with '#'. Returns true for OpenMetrics' "# EOF". */
  private comment(start: number, eol: number): boolean {
    const text = this.text
    let p = start + 1
    if (this.om) {
      if (text.startsWith(' EOF', p) && p + 4 === eol) return true
      let kw = ''
      if (text.startsWith(' HELP', p)) kw = 'HELP'
      else if (text.startsWith(' TYPE', p)) kw = 'TYPE'
      else if (text.startsWith(' UNIT', p)) kw = 'UNIT'
      if (!kw || (p + 5 < eol && text.charCodeAt(p + 5) !== SP)) {
        if (text.startsWith(' EOF', p)) this.err('om-after-eof', '"# EOF" must be alone on its line')
        else
          this.err(
            'om-comment',
            `OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF lines, got ${show(text.slice(start, eol))}`
          )
        return false
      }
      this.metadata(kw, p + 5, eol)
      return false
    }
    while (p < eol && isBlank(text.charCodeAt(p))) p++
    let kw = ''
    if (text.startsWith('HELP', p)) kw = 'HELP'
    else if (text.startsWith('TYPE', p)) kw = 'TYPE'
    if (!kw) return false
    const after = p + 4
    if (after < eol && !isBlank(text.charCodeAt(after))) return false // e.g. "# HELPER": a plain comment
    this.metadata(kw, after, eol)
    return false
  }

  /** p: just after the keyword */
  private metadata(kw: string, p: number, eol: number): void {
    const text = this.text
    const om = this.om
    const syntaxRule: RuleId =
      kw === 'HELP' ? 'help-syntax' : kw === 'TYPE' ? 'type-syntax' : 'om-unit-syntax'
    // name
    if (om) {
      if (p < eol) p++ // the single space (checked by the caller)
      if (p < eol && isBlank(text.charCodeAt(p)))
        this.err('om-whitespace', `more than one space before the metric name in # ${kw}`)
    }
    while (p < eol && isBlank(text.charCodeAt(p))) p++
    const ns = p
    const ne = this.scanMetricName(p, eol)
    if (ne === ns || (ne < eol && !isBlank(text.charCodeAt(ne)))) {
      let te = ns
      while (te < eol && !isBlank(text.charCodeAt(te))) te++
      if (ns === eol) this.err(syntaxRule, `# ${kw} line without a metric name`)
      else this.err('metric-name', `invalid metric name ${show(text.slice(ns, te))} in # ${kw}`)
      return
    }
    const name = text.slice(ns, ne)
    const f = this.family(name)
    this.enter(f)
    this.lastFam = null // metadata may change which family a sample name belongs to
    // the rest: one blank (OpenMetrics: exactly one space), then the docstring / type / unit
    let r = ne
    if (om) {
      if (r < eol) {
        if (text.charCodeAt(r) !== SP)
          this.err('om-whitespace', `# ${kw}: use one space after the metric name`)
        r++
      } else if (kw !== 'TYPE') {
        this.err(
          syntaxRule,
          `# ${kw} ${name} needs a space after the metric name, even when the ${kw === 'HELP' ? 'text' : 'unit'} is empty`
        )
      }
    } else {
      while (r < eol && isBlank(text.charCodeAt(r))) r++
    }
    if (kw === 'HELP') {
      if (f.helpLine)
        this.err('help-duplicate', `second # HELP line for ${show(name)} (first on line ${f.helpLine})`)
      else f.helpLine = this.line
      if (om && f.samples > 0)
        this.err('help-after-samples', `# HELP for ${show(name)} comes after its samples; put metadata first`)
      // escapes
      // OpenMetrics: a backslash may stand before any character (undefined escapes SHOULD NOT be used, but
      // parse), never at the end; the text format: only \\ and \n, as Prometheus' text parser reads it
      let b = this.backslashFrom(r)
      while (b < eol) {
        const e = b + 1 < eol ? text.charCodeAt(b + 1) : -1
        if (om ? e === -1 : !(e === BS || e === 110 /* n */)) {
          this.err(
            'help-escape',
            om
              ? `# HELP ${name} ends with a lone backslash; write \\\\ for a backslash`
              : `invalid escape ${show(text.slice(b, Math.min(b + 2, eol)))} in # HELP ${name}; only \\\\ and \\n are allowed (write \\\\ for a backslash)`
          )
          break
        }
        b = this.backslashFrom(b + 2)
      }
      return
    }
    if (kw === 'UNIT') {
      const unit = text.slice(r, eol)
      if (f.unitLine)
        this.err('om-unit-duplicate', `second # UNIT line for ${show(name)} (first on line ${f.unitLine})`)
      else {
        f.unitLine = this.line
        f.unit = unit
        if (unit !== '' && (f.type === 'info' || f.type === 'stateset'))
          this.err(
            'om-unit-type',
            `${f.type} ${show(name)} has unit ${show(unit)}; ${f.type} families have no unit: drop the # UNIT line`
          )
      }
      if (f.samples > 0)
        this.err(
          'om-unit-after-samples',
          `# UNIT for ${show(name)} comes after its samples; put metadata first`
        )
      if (unit !== '' && !name.endsWith('_' + unit))
        this.err(
          'om-unit-suffix',
          `metric ${show(name)} has unit ${show(unit)} but its name does not end with "_${unit}"`
        )
      return
    }
    // TYPE
    const raw = text.slice(r, eol)
    const lower = raw.toLowerCase()
    const known = om ? OM_TYPES : TEXT_TYPES
    let type = ''
    if (raw === '')
      this.err('type-syntax', `# TYPE ${name} names no type; write one of ${[...known].join(', ')}`)
    else if (known.has(raw)) type = raw
    else if (known.has(lower)) {
      this.err('type-lowercase', `type ${show(raw)} of ${show(name)} must be lower case: "${lower}"`)
      type = lower
    } else
      this.err(
        'type-unknown',
        `unknown type ${show(raw)} for ${show(name)}; use one of ${[...known].join(', ')}` +
          (!om && OM_TYPES.has(lower)
            ? ' (an OpenMetrics type: serve OpenMetrics as Content-Type application/openmetrics-text)'
            : '')
      )
    if (f.typeLine) {
      this.err('type-duplicate', `second # TYPE line for ${show(name)} (first on line ${f.typeLine})`)
      return
    }
    f.typeLine = this.line
    if (f.samples > 0)
      this.err(
        'type-after-samples',
        `# TYPE for ${show(name)} comes after its samples; it must come before them`
      )
    else {
      f.type = type
      if (om && type) {
        if (f.unit !== '' && (type === 'info' || type === 'stateset'))
          this.err(
            'om-unit-type',
            `${type} ${show(name)} has unit ${show(f.unit)} (line ${f.unitLine}); ${type} families have no unit: drop the # UNIT line`
          )
        for (const kind of OM_ALLOWED[type]) if (kind !== K_BARE) this.claim(name + SUFFIX_OF[kind], f)
      }
    }
  }

  /** Whether `s` occurs in the text at `pos` (a plain loop: startsWith with a position is slow on long strings). */
  private textIs(s: string, pos: number): boolean {
    const text = this.text
    for (let i = s.length - 1; i >= 0; i--) if (text.charCodeAt(pos + i) !== s.charCodeAt(i)) return false
    return true
  }

  /** End of the name at p whose first char has class bit `start` and the rest `char` (p when none). */
  private scanName(p: number, e: number, start: number, char: number): number {
    const text = this.text
    if (p >= e) return p
    const c0 = text.charCodeAt(p)
    if (c0 >= 128 || !(CT[c0] & start)) return p
    p++
    while (p < e) {
      const c = text.charCodeAt(p)
      if (c >= 128 || !(CT[c] & char)) break
      p++
    }
    return p
  }

  private scanMetricName(p: number, e: number): number {
    return this.scanName(p, e, M_START, M_CHAR)
  }

  private scanLabelName(p: number, e: number): number {
    return this.scanName(p, e, L_START, L_CHAR)
  }

  // ---- samples -----------------------------------------------------------------------------------------

  private sample(start: number, eol: number): void {
    const text = this.text
    const om = this.om
    this.sampleCount++
    const ne = this.scanMetricName(start, eol)
    if (ne === start) {
      let te = start
      while (te < eol && !isBlank(text.charCodeAt(te)) && text.charCodeAt(te) !== LBRACE) te++
      this.err('metric-name', `invalid metric name ${show(text.slice(start, te))}`)
      return
    }
    let p = ne
    let c = p < eol ? text.charCodeAt(p) : NL
    // text format: a value may follow the name without a blank when it cannot merge with it (a+1, b-1, c.5)
    const glued = !om && (c === 43 || c === 45 || c === 46)
    if (!(c === LBRACE || isBlank(c) || c === NL || glued)) {
      this.err(
        'metric-name',
        `invalid character ${show(String.fromCharCode(c))} in metric name ${show(text.slice(start, p + 1))}`
      )
      return
    }
    // labels
    this.nLabels = 0
    this.tsStart = -1
    this.labelsCanonical = true
    this.labelsOpen = -1
    if (isBlank(c)) {
      const b = p
      while (p < eol && isBlank(text.charCodeAt(p))) p++
      c = p < eol ? text.charCodeAt(p) : NL
      if (c === LBRACE) {
        this.labelsCanonical = false
        if (om) this.err('om-whitespace', 'blank between the metric name and "{"')
      } else if (om && (p - b > 1 || text.charCodeAt(b) !== SP))
        this.err('om-whitespace', 'use exactly one space before the value')
    }
    if (c === LBRACE) {
      p = this.labels(p, eol, true)
      if (p < 0) return
      // after "}": text allows blanks (or none) before the value; OpenMetrics exactly one space
      const b = p
      while (p < eol && isBlank(text.charCodeAt(p))) p++
      if (om && (p - b !== 1 || text.charCodeAt(b) !== SP) && p < eol)
        this.err('om-whitespace', 'use exactly one space between "}" and the value')
    }
    // value
    const vs = p
    while (p < eol && !isBlank(text.charCodeAt(p))) p++
    const ve = p
    if (vs === ve) {
      this.err('value-float', 'sample has no value')
      return
    }
    let value = this.parseFloat(vs, ve)
    let valueOk = true
    if (value === undefined) {
      valueOk = false
      value = NaN
      if (glued && vs === ne) {
        // "http-requests 1": more likely a bad name than a value glued to it
        let te = ne
        while (te < eol && !isBlank(text.charCodeAt(te)) && text.charCodeAt(te) !== LBRACE) te++
        this.err(
          'metric-name',
          `invalid character ${show(text[ne])} in metric name ${show(text.slice(start, te))}`
        )
        return
      }
      this.err(
        'value-float',
        text.charCodeAt(ve - 1) === 13
          ? `value ${show(text.slice(vs, ve))} ends with a carriage return: use \\n line endings, not \\r\\n`
          : `value ${show(text.slice(vs, ve))} is not a float64 (use digits, e.g. 1.5e3, within ±1.8e308, or +Inf, -Inf, NaN)`
      )
    }
    // timestamp / exemplar
    if (p < eol) {
      const b = p
      while (p < eol && isBlank(text.charCodeAt(p))) p++
      if (p === eol) this.err('trailing-whitespace', 'blanks after the value at the end of the line')
      else {
        if (om && (p - b !== 1 || text.charCodeAt(b) !== SP))
          this.err('om-whitespace', 'use exactly one space after the value')
        if (om && text.charCodeAt(p) === HASH) {
          this.exemplarAt = p
        } else {
          const ts = p
          while (p < eol && !isBlank(text.charCodeAt(p))) p++
          this.timestamp(ts, p)
          this.tsStart = ts
          this.tsEnd = p
          if (p < eol) {
            const b2 = p
            while (p < eol && isBlank(text.charCodeAt(p))) p++
            if (p === eol)
              this.err('trailing-whitespace', 'blanks after the timestamp at the end of the line')
            else if (om && text.charCodeAt(p) === HASH) {
              if (p - b2 !== 1 || text.charCodeAt(b2) !== SP)
                this.err('om-whitespace', 'use exactly one space before the exemplar')
              this.exemplarAt = p
            } else this.err('sample-syntax', `unexpected ${show(text.slice(p, eol))} after the timestamp`)
          }
        }
      }
    }
    this.valueNum = value
    this.record(start, ne, valueOk)
    if (this.exemplarAt >= 0) {
      const x = this.exemplarAt
      this.exemplarAt = -1
      this.exemplar(x, eol)
    }
  }

  /**
   * Parses a label set starting at "{"; returns the position after "}" or -1 after an error.
   * store=false (exemplars): checks the syntax only.
   */
  private labels(p: number, eol: number, store: boolean): number {
    const text = this.text
    const open = p
    p++
    let n = 0
    for (;;) {
      p = this.labelBlanks(p, eol)
      if (p >= eol) {
        this.err('label-syntax', 'label set is not closed with "}"')
        return -1
      }
      let c = text.charCodeAt(p)
      if (c === RBRACE) {
        if (n > 0 && this.om) this.err('label-syntax', 'trailing comma in a label set')
        if (n > 0) this.labelsCanonical = false
        p++
        break
      }
      const ls = p
      const le = this.scanLabelName(p, eol)
      if (le === ls) {
        let te = ls
        while (
          te < eol &&
          (te === ls || !isBlank(text.charCodeAt(te))) &&
          text.charCodeAt(te) !== EQ &&
          text.charCodeAt(te) !== RBRACE
        )
          te++
        this.err('label-name', `invalid label name ${show(text.slice(ls, Math.max(te, ls + 1)))}`)
        return -1
      }
      if (store && text.charCodeAt(ls) === 95 && text.charCodeAt(ls + 1) === 95) {
        this.err(
          'label-name-reserved',
          `label name ${show(text.slice(ls, le))} starts with "__", which is reserved for Prometheus`
        )
      }
      p = le
      p = this.labelBlanks(p, eol)
      if (p >= eol || text.charCodeAt(p) !== EQ) {
        const c2 = p < eol ? text.charCodeAt(p) : -1
        if (
          c2 > 0 &&
          c2 < 128 &&
          !isBlank(c2) &&
          c2 !== EQ &&
          c2 !== RBRACE &&
          c2 !== COMMA &&
          c2 !== QUOTE
        ) {
          this.err(
            'label-name',
            `invalid character ${show(String.fromCharCode(c2))} in label name ${show(text.slice(ls, p + 1))}`
          )
        } else this.err('label-syntax', `expected "=" after label name ${show(text.slice(ls, le))}`)
        return -1
      }
      p++
      p = this.labelBlanks(p, eol)
      if (p >= eol || text.charCodeAt(p) !== QUOTE) {
        this.err('label-syntax', `expected a quoted value after ${show(text.slice(ls, le) + '=')}`)
        return -1
      }
      p++
      const vs = p
      const ve = this.labelValue(p, eol, ls, le)
      if (ve < 0) return -1
      if (store) {
        this.lnS[n] = ls
        this.lnE[n] = le
        this.lvS[n] = vs
        this.lvE[n] = ve
      } else this.exemplarChars += le - ls + this.codePoints(vs, ve)
      n++
      p = ve + 1
      p = this.labelBlanks(p, eol)
      c = p < eol ? text.charCodeAt(p) : -1
      if (c === COMMA) {
        p++
        continue
      }
      if (c === RBRACE) {
        p++
        break
      }
      this.err(
        'label-syntax',
        c === -1
          ? 'label set is not closed with "}"'
          : `expected "," or "}" after the value of label ${show(text.slice(ls, le))}, got ${show(String.fromCharCode(c))}`
      )
      return -1
    }
    if (store) {
      this.nLabels = n
      this.labelsOpen = open
      this.labelsClose = p - 1
    }
    return p
  }

  /** Code points of an escaped label value (an escape is one character; a surrogate pair is one). */
  private codePoints(s: number, e: number): number {
    const text = this.text
    let n = 0
    for (let i = s; i < e; i++) {
      const c = text.charCodeAt(i)
      if (c === BS) i++
      else if (c >= 0xdc00 && c <= 0xdfff) continue
      n++
    }
    return n
  }

  /** Skips blanks inside a label set (text format: allowed, OpenMetrics: an error). */
  private labelBlanks(p: number, eol: number): number {
    const b = p
    while (p < eol && isBlank(this.text.charCodeAt(p))) p++
    if (p !== b) {
      this.labelsCanonical = false
      if (this.om) this.err('om-whitespace', 'blanks inside a label set')
    }
    return p
  }

  /** The first backslash at or after p (Infinity: none); cached, as positions only move forward. */
  private backslashFrom(p: number): number {
    if (this.nextBackslash < p) {
      const b = this.text.indexOf('\\', p)
      this.nextBackslash = b === -1 ? Infinity : b
    }
    return this.nextBackslash
  }

  /** p: after the opening quote; ls..le: the label name. Returns the closing quote's position, or -1 after an error. */
  private labelValue(p: number, eol: number, ls: number, le: number): number {
    const text = this.text
    let q = text.indexOf('"', p)
    if (q === -1 || q > eol) q = -1
    // backslashes between p and the closing quote (a \" moves the closing quote on)
    for (;;) {
      const b = this.backslashFrom(p)
      if (b >= eol || (q !== -1 && b > q)) break
      const e = b + 1 < eol ? text.charCodeAt(b + 1) : -1
      // OpenMetrics' ABNF: a backslash before any character; the text format: only \\ \" \n
      if (e === BS || e === QUOTE || e === 110 /* n */ || (this.om && e !== -1)) {
        p = b + 2
        if (q !== -1 && q < p) {
          q = text.indexOf('"', p)
          if (q === -1 || q > eol) q = -1
        }
        continue
      }
      this.err(
        'label-value-escape',
        `invalid escape ${show(text.slice(b, Math.min(b + 2, eol)))} in the value of label ${show(text.slice(ls, le))}; only \\\\, \\" and \\n are allowed`
      )
      return -1
    }
    if (q === -1) {
      this.err(
        'label-value-unterminated',
        `the value of label ${show(text.slice(ls, le))} has no closing quote on this line (a raw line break inside a value must be written \\n)`
      )
      return -1
    }
    if (this.hasReplacement) {
      if (this.nextReplacement < p) {
        this.nextReplacement = text.indexOf('\uFFFD', p)
        if (this.nextReplacement === -1) this.nextReplacement = Infinity
      }
      if (this.nextReplacement < q) {
        this.err(
          'label-value-utf8',
          `the value of label ${show(text.slice(ls, le))} contains U+FFFD: the response held bytes that are not valid UTF-8`
        )
      }
    }
    return q
  }

  /** Go ParseFloat syntax as the text parser accepts it; returns undefined when invalid. */
  private parseFloat(s: number, e: number): number | undefined {
    const text = this.text
    let p = s
    let c = text.charCodeAt(p)
    let sign = false
    if (c === 43 || c === 45) {
      sign = true
      p++
      if (p === e) return undefined
      c = text.charCodeAt(p)
    }
    if ((c >= 48 && c <= 57) || c === 46) {
      let digits = 0
      let int = 0
      while (p < e && (c = text.charCodeAt(p)) >= 48 && c <= 57) {
        int = int * 10 + (c - 48)
        p++
        digits++
      }
      // a plain integer of up to 15 digits is exact as a double: no string to make and convert
      if (p === e && digits <= 15) return text.charCodeAt(s) === 45 ? -int : int
      if (p < e && c === 46) {
        p++
        while (p < e && (c = text.charCodeAt(p)) >= 48 && c <= 57) {
          p++
          digits++
        }
      }
      if (digits === 0) return undefined
      if (p < e && (c === 101 || c === 69)) {
        p++
        if (p < e && ((c = text.charCodeAt(p)) === 43 || c === 45)) p++
        const ds = p
        while (p < e && (c = text.charCodeAt(p)) >= 48 && c <= 57) p++
        if (p === ds) return undefined
      }
      if (p !== e) return undefined
      const v = +text.slice(s, e)
      // beyond float64 (Go's ParseFloat says ErrRange there; JavaScript rounds to Infinity alike)
      return v === Infinity || v === -Infinity ? undefined : v
    }
    const len = e - p
    if (len === 3 || len === 8) {
      const w = text.slice(p, e).toLowerCase()
      if (w === 'inf' || w === 'infinity') return text.charCodeAt(s) === 45 ? -Infinity : Infinity
      if (w === 'nan' && !sign) return NaN
    }
    return undefined
  }

  private timestamp(s: number, e: number): void {
    const text = this.text
    if (this.om) {
      const t = this.parseFloat(s, e)
      if (t === undefined || !Number.isFinite(t))
        this.err('timestamp-invalid', `timestamp ${show(text.slice(s, e))} is not a number of seconds`)
      this.tsValue = t ?? NaN
      return
    }
    let p = s
    const c = text.charCodeAt(p)
    if (c === 43 || c === 45) {
      p++
      this.err(
        'timestamp-sign',
        `timestamp ${show(text.slice(s, e))} has a sign; Prometheus' scrape parser accepts only digits (no times before 1970)`
      )
    }
    const ds = p
    while (p < e) {
      const d = text.charCodeAt(p)
      if (d < 48 || d > 57) break
      p++
    }
    let ok = p === e && p > ds
    if (ok && e - ds >= 19) {
      // int64: at most 9223372036854775807 (and -9223372036854775808)
      let z = ds
      while (z < e - 1 && text.charCodeAt(z) === 48) z++
      const digits = text.slice(z, e)
      const limit = c === 45 ? '9223372036854775808' : '9223372036854775807'
      if (digits.length > 19 || (digits.length === 19 && digits > limit)) ok = false
    }
    if (!ok)
      this.err(
        'timestamp-integer',
        `timestamp ${show(text.slice(s, e))} is not an integer number of milliseconds`
      )
  }

  private exemplar(p: number, eol: number): void {
    const text = this.text
    // "# {labels} value [timestamp]"
    if (!this.exemplarAllowed)
      this.err('om-exemplar', 'exemplars are allowed only on counter _total and histogram _bucket samples')
    if (!text.startsWith('# {', p)) {
      this.err('om-exemplar-syntax', `expected "# {" to start an exemplar, got ${show(text.slice(p, eol))}`)
      return
    }
    const saveCanonical = this.labelsCanonical
    this.exemplarChars = 0
    p = this.labels(p + 2, eol, false)
    this.labelsCanonical = saveCanonical
    if (p < 0) return
    if (this.exemplarChars > 128)
      this.err(
        'om-exemplar-length',
        `the exemplar's label names and values are ${this.exemplarChars} characters (code points) long; OpenMetrics allows 128: shorten them (e.g. a trace id alone)`
      )
    if (text.charCodeAt(p) !== SP) {
      this.err('om-exemplar-syntax', 'the exemplar has no value')
      return
    }
    p++
    const vs = p
    while (p < eol && text.charCodeAt(p) !== SP) p++
    const v = this.parseFloat(vs, p)
    if (v === undefined)
      this.err('om-exemplar-syntax', `exemplar value ${show(text.slice(vs, p))} is not a number`)
    else if (v > this.exemplarLe)
      this.err(
        'om-exemplar-value',
        `exemplar value ${show(text.slice(vs, p))} is above its bucket's le=${this.exemplarLe}; put the exemplar on a bucket that holds it`
      )
    if (p < eol) {
      p++
      const t = this.parseFloat(p, eol)
      if (t === undefined || !Number.isFinite(t))
        this.err('om-exemplar-syntax', `exemplar timestamp ${show(text.slice(p, eol))} is not a number`)
    }
  }

  /** Attributes the parsed sample to its family and runs the per-family checks. */
  private record(start: number, ne: number, valueOk: boolean): void {
    const text = this.text
    let name: string
    let fam: Family
    let kind: number
    if (this.lastFam && ne - start === this.lastName.length && this.textIs(this.lastName, start)) {
      name = this.lastName
      fam = this.lastFam
      kind = this.lastKind
      if (fam !== this.cur) this.enter(fam)
    } else {
      name = text.slice(start, ne)
      if (this.om) {
        ;[fam, kind] = this.omFamily(name)
      } else {
        ;[fam, kind] = this.textFamily(name)
      }
      if (name !== fam.name) this.metricNames.add(name) // family() added the family's own name
      this.enter(fam)
      this.lastName = name
      this.lastFam = fam
      this.lastKind = kind
    }
    fam.samples++
    if (this.onSample && valueOk)
      this.onSample({
        name,
        family: fam.name,
        type: fam.type,
        labels: this.labelObject(),
        value: this.valueNum
      })
    this.exemplarAllowed = false
    this.exemplarLe = NaN
    const type = fam.type

    // histogram le / summary quantile: kept apart from the other labels, which identify the series group
    const isHist = type === 'histogram' || type === 'gaugehistogram'
    let special = -1
    if (isHist) special = this.labelIndex('le')
    else if (type === 'summary') special = this.labelIndex('quantile')
    if (this.om && special >= 0 && (isHist ? kind !== K_BUCKET : kind !== K_BARE))
      this.err(
        'om-reserved-label',
        `${name} carries a ${isHist ? 'le' : 'quantile'} label; only ${isHist ? `${fam.name}_bucket samples` : `the quantile samples ${fam.name}{quantile=...}`} may: drop it here`
      )
    // label names: sorted (the usual case) or checked for duplicates
    this.labelsSorted = this.sortedExcept(special)
    if (!this.labelsSorted) this.duplicateLabels(name)

    // duplicate series
    const gk = special >= 0 || isHist || this.om ? this.groupKey(special) : ''
    if (this.om && gk !== fam.lastMetric) {
      // OpenMetrics: all samples of one Metric (label set without le/quantile) form one group
      // (no Set until a family has a second label set: most families have one)
      if (fam.lastMetric !== null) {
        const metrics = (fam.metrics ??= new Set([fam.lastMetric]))
        if (metrics.has(gk))
          this.err(
            'om-interleaved',
            `samples of ${show(fam.name)}{${gk}} come back after another label set; keep each Metric's samples together`
          )
        else metrics.add(gk)
      }
      fam.lastMetric = gk
    }
    // text format: a histogram's samples are told apart by their group (below), without a series key
    if (this.om || !isHist || kind === K_BARE) {
      const key =
        special >= 0
          ? name + '{' + gk + '}' + text.slice(this.lvS[special], this.lvE[special])
          : this.seriesKey(start, ne, name)
      if (this.om) this.metricPoint(fam, key, start, name)
      else if (this.seenSeries(fam, key)) this.duplicate(start, name, '')
    }

    if (special >= 0) {
      const sv = this.parseFloat(this.lvS[special], this.lvE[special])
      if (sv === undefined || Number.isNaN(sv)) {
        const raw = show(text.slice(this.lvS[special], this.lvE[special]))
        if (isHist) this.err('histogram-le-invalid', `le ${raw} is not a float`)
        else this.err('summary-quantile-invalid', `quantile ${raw} is not a float`)
        return
      }
      const ls = this.lvS[special]
      if (this.om && sv === Infinity && !(this.lvE[special] - ls === 4 && this.textIs('+Inf', ls)))
        this.err(
          'histogram-le-inf',
          `bucket le=${show(text.slice(ls, this.lvE[special]))}: OpenMetrics writes the +Inf bucket as le="+Inf", exactly`
        )
      this.specialValue = sv
    }
    if (!valueOk) return
    const value = this.valueNum
    if (type === 'histogram' || type === 'gaugehistogram') {
      this.exemplarAllowed = kind === K_BUCKET
      this.histogram(fam, kind, value, name, special, gk, start)
    } else if (type === 'summary') {
      if (kind === K_BARE) {
        this.quantile(special)
        if (this.om && value < 0)
          this.err(
            'om-quantile-value',
            `quantile sample ${name} is ${value}; quantile values must not be negative`
          )
      } else if (this.om && kind === K_COUNT) this.count(name, value)
      else if (this.om && kind === K_SUM && !(value >= 0))
        this.err('om-sum-value', `${name} is ${value}; a summary's sum must not be negative or NaN`)
    } else if (this.om) {
      if (type === 'counter') {
        this.exemplarAllowed = kind === K_TOTAL
        if (kind === K_TOTAL && !(value >= 0))
          this.err(
            'om-counter-value',
            `counter ${name} is ${value}; counter totals must not be negative or NaN`
          )
      } else if (type === 'info') {
        if (value !== 1)
          this.err('om-info-value', `info metric ${name} has the value ${value}; info samples must be 1`)
      } else if (type === 'stateset') {
        if (value !== 0 && value !== 1)
          this.err('om-stateset', `stateset ${name} has the value ${value}; states are 0 or 1`)
        if (this.labelIndex(fam.name) < 0)
          this.err('om-stateset', `stateset ${name} has no label named ${show(fam.name)}`)
      }
    }
  }

  private duplicate(start: number, name: string, why: string): void {
    this.err(
      'series-duplicate',
      `duplicate series ${clip(this.nLabels ? this.text.slice(start, this.labelsClose + 1) : name, 160)}: the same name and label set appear twice${why}`
    )
  }

  /**
   * OpenMetrics: one Metric may carry several MetricPoints, each with its timestamp, in increasing order
   * (spec: "MUST have monotonically increasing timestamps"); the same timestamp twice is a duplicate,
   * as Prometheus keeps only the first of them.
   */
  private metricPoint(fam: Family, key: string, start: number, name: string): void {
    const seen = this.seenSeries(fam, key)
    const hasTs = this.tsStart >= 0
    if (!seen && !hasTs) return
    const t = this.tsValue
    if (seen) {
      const prev = fam.times?.get(key)
      const ts = hasTs ? show(this.text.slice(this.tsStart, this.tsEnd)) : ''
      if (!hasTs && prev === undefined) this.duplicate(start, name, '')
      else if (!hasTs || prev === undefined)
        this.err(
          'om-timestamp-order',
          `${clip(name, 80)} appears ${hasTs ? `with timestamp ${ts} after a sample without one` : 'without a timestamp after samples with one'}; give every MetricPoint of a Metric a timestamp, or none`
        )
      else if (t === prev) this.duplicate(start, name, ` with the same timestamp ${ts}`)
      else if (t < prev)
        this.err(
          'om-timestamp-order',
          `timestamp ${ts} of ${clip(name, 80)} is before the previous one (${prev}); MetricPoints of a Metric go in increasing time order`
        )
    }
    if (hasTs) (fam.times ??= new Map()).set(key, t)
  }

  /** OpenMetrics: histogram buckets and counts, summary counts: whole, not negative, not NaN. */
  private count(name: string, value: number): void {
    if (!(value >= 0))
      this.err(
        'om-negative-count',
        `${name} is ${value}; bucket and count values must not be negative or NaN`
      )
    else if (!Number.isInteger(value))
      this.err('om-count-integer', `${name} is ${value}; counts and buckets are whole numbers`)
  }

  /** text format: _bucket/_count/_sum belong to a declared histogram or summary family, anything else is its own */
  private textFamily(name: string): [Family, number] {
    const fams = this.families
    let kind = -1
    let base = ''
    if (name.endsWith('_bucket')) {
      base = name.slice(0, -7)
      if (fams.get(base)?.type === 'histogram') kind = K_BUCKET
    } else if (name.endsWith('_count')) {
      base = name.slice(0, -6)
      const t = fams.get(base)?.type
      if (t === 'histogram' || t === 'summary') kind = K_COUNT
    } else if (name.endsWith('_sum')) {
      base = name.slice(0, -4)
      const t = fams.get(base)?.type
      if (t === 'histogram' || t === 'summary') kind = K_SUM
    }
    if (kind >= 0) return [fams.get(base)!, kind]
    const f = this.family(name)
    if (f.type === 'histogram')
      this.err(
        'histogram-sample-name',
        `sample ${show(name)} of histogram ${show(name)}: histogram samples are ${name}_bucket, ${name}_sum and ${name}_count`
      )
    return [f, K_BARE]
  }

  /** OpenMetrics: a sample belongs to the current family when its name is the family name plus a suffix */
  private omFamily(name: string): [Family, number] {
    const cur = this.cur
    const check = (f: Family, kind: number): [Family, number] => {
      const t = f.type || 'unknown'
      if (!OM_ALLOWED[t].includes(kind)) {
        if (t === 'counter')
          this.err(
            'om-counter-total',
            `counter ${show(f.name)}: sample ${show(name)} must be named ${f.name}_total (or ${f.name}_created)`
          )
        else {
          const allowed = OM_ALLOWED[t].map(k =>
            k === K_BARE ? f.name : f.name + OM_SUFFIXES.find(s => s[1] === k)![0]
          )
          this.err(
            t === 'histogram' ? 'histogram-sample-name' : 'om-sample-name',
            `${t} ${show(f.name)}: sample ${show(name)} is not one of ${allowed.join(', ')}`
          )
        }
      }
      return [f, kind]
    }
    if (cur) {
      if (name === cur.name) return check(cur, K_BARE)
      if (name.startsWith(cur.name) && name.charCodeAt(cur.name.length) === 95) {
        for (const [suffix, kind] of OM_SUFFIXES) {
          if (name.length === cur.name.length + suffix.length && name.endsWith(suffix))
            return check(cur, kind)
        }
      }
    }
    // an earlier family (then not contiguous) or a new one
    for (const [suffix, kind] of OM_SUFFIXES) {
      if (name.endsWith(suffix)) {
        const f = this.families.get(name.slice(0, -suffix.length))
        if (f && f.type && OM_ALLOWED[f.type].includes(kind)) return [f, kind]
      }
    }
    const f = this.family(name)
    return check(f, K_BARE)
  }

  /** The current sample's labels, values unescaped. */
  private labelObject(): Record<string, string> {
    const text = this.text
    const out: Record<string, string> = {}
    for (let i = 0; i < this.nLabels; i++) {
      const raw = text.slice(this.lvS[i], this.lvE[i])
      out[text.slice(this.lnS[i], this.lnE[i])] = raw.includes('\\')
        ? raw.replace(/\\([\\"n])/g, (_m, c: string) => (c === 'n' ? '\n' : c))
        : raw
    }
    return out
  }

  /** Index of the current sample's label with that name, -1 when it has none. */
  private labelIndex(labelName: string): number {
    for (let i = 0; i < this.nLabels; i++) {
      if (this.lnE[i] - this.lnS[i] === labelName.length && this.textIs(labelName, this.lnS[i])) return i
    }
    return -1
  }

  private quantile(i: number): void {
    if (i < 0) {
      this.err('summary-quantile-missing', `summary sample ${show(this.lastName)} has no quantile label`)
      return
    }
    const q = this.specialValue
    if (!(q >= 0 && q <= 1))
      this.err(
        'summary-quantile-range',
        `quantile ${show(this.text.slice(this.lvS[i], this.lvE[i]))} is outside [0, 1]`
      )
  }

  private histogram(
    fam: Family,
    kind: number,
    value: number,
    name: string,
    leIdx: number,
    gk: string,
    start: number
  ): void {
    const line = this.line
    if (kind === K_BARE) {
      // textFamily/omFamily reported the name already
      return
    }
    if (this.om && (kind === K_BUCKET || kind === K_COUNT || kind === K_GCOUNT)) this.count(name, value)
    if (kind !== K_BUCKET && kind !== K_COUNT && kind !== K_GCOUNT && kind !== K_SUM && kind !== K_GSUM)
      return
    if (kind === K_BUCKET && leIdx < 0) {
      this.err('histogram-le-missing', `histogram bucket ${show(name)} has no le label`)
      return
    }
    let groups = fam.groups
    if (!groups) groups = fam.groups = new Map()
    let g = fam.lastGroupKey === gk ? fam.lastGroup : groups.get(gk)
    if (!g) {
      g = {
        lastLe: NaN,
        lastCount: NaN,
        lastBucketLine: 0,
        hasInf: false,
        inf: 0,
        hasCount: false,
        count: 0,
        countLine: 0,
        sumLine: 0,
        sum: 0,
        negativeLe: false,
        les: null,
        firstLine: line
      }
      groups.set(gk, g)
    }
    fam.lastGroupKey = gk
    fam.lastGroup = g
    const text = !this.om // text format: the duplicate checks of histogram samples are made here
    if (kind === K_SUM || kind === K_GSUM) {
      if (text && g.sumLine) this.duplicate(start, name, '')
    } else if (kind !== K_BUCKET) {
      if (text && g.hasCount) this.duplicate(start, name, '')
    }
    if (kind === K_SUM || kind === K_GSUM) {
      g.sumLine = line
      g.sum = value
      return
    }
    if (kind !== K_BUCKET) {
      g.hasCount = true
      g.count = value
      g.countLine = line
      return
    }
    const le = this.specialValue
    this.exemplarLe = le
    if (le < 0) g.negativeLe = true
    if (g.lastBucketLine) {
      if (!(le > g.lastLe)) {
        if (text && this.seenLe(g.les!, leIdx)) this.duplicate(start, name, '')
        this.err(
          'histogram-le-order',
          `bucket le="${this.text.slice(this.lvS[leIdx], this.lvE[leIdx])}" does not come after le=${g.lastLe} (line ${g.lastBucketLine}); le must increase strictly`
        )
      }
      if (value < g.lastCount)
        this.err(
          'histogram-bucket-decreasing',
          `bucket count ${value} is less than ${g.lastCount} of the previous bucket (line ${g.lastBucketLine}); buckets are cumulative`
        )
    }
    if (text) (g.les ??= []).push(this.lvS[leIdx], this.lvE[leIdx])
    g.lastLe = le
    g.lastCount = value
    g.lastBucketLine = line
    if (le === Infinity) {
      g.hasInf = true
      g.inf = value
    }
  }

  /** Whether an earlier bucket of the group had the same le text as the current sample's label i. */
  private seenLe(les: number[], i: number): boolean {
    const text = this.text
    const le = text.slice(this.lvS[i], this.lvE[i])
    for (let k = 0; k < les.length; k += 2) if (text.slice(les[k], les[k + 1]) === le) return true
    return false
  }

  /** The series key: name and label set, independent of label order and blanks. */
  private seriesKey(start: number, ne: number, name: string): string {
    const n = this.nLabels
    if (n === 0) return name
    const text = this.text
    if (this.labelsCanonical && this.labelsSorted && this.labelsOpen === ne)
      return text.slice(start, this.labelsClose + 1)
    return name + '{' + this.sortedPairs(-1) + '}'
  }

  /** Labels but `except`, sorted, as name="value",...; duplicate label names are reported here. */
  private sortedPairs(except: number): string {
    const text = this.text
    const pieces: string[] = []
    for (let i = 0; i < this.nLabels; i++) {
      if (i !== except)
        pieces.push(text.slice(this.lnS[i], this.lnE[i]) + '="' + text.slice(this.lvS[i], this.lvE[i]) + '"')
    }
    pieces.sort()
    return pieces.join(',')
  }

  private groupKey(except: number): string {
    // canonical and sorted lines: slices around the le pair
    const text = this.text
    const n = this.nLabels
    if (n === 0 || (n === 1 && except === 0)) return ''
    if (this.labelsCanonical && this.labelsSorted) {
      if (except < 0) return text.slice(this.lnS[0], this.lvE[n - 1] + 1)
      if (except === n - 1) return text.slice(this.lnS[0], this.lvE[n - 2] + 1)
      if (except === 0) return text.slice(this.lnS[1], this.lvE[n - 1] + 1)
      return (
        text.slice(this.lnS[0], this.lvE[except - 1] + 1) +
        ',' +
        text.slice(this.lnS[except + 1], this.lvE[n - 1] + 1)
      )
    }
    return this.sortedPairs(except)
  }

  /** Records a series key in its family; true when it was there already. No Set for one-series families. */
  private seenSeries(fam: Family, key: string): boolean {
    const series = fam.series
    if (series) {
      const size = series.size
      series.add(key)
      return series.size === size
    }
    const first = fam.firstSeries
    if (first === null) fam.firstSeries = key
    else if (first === key) return true
    else fam.series = new Set([first, key])
    return false
  }

  /** Label names strictly increasing, skipping index `except`, whose name must not appear again. */
  private sortedExcept(except: number): boolean {
    const n = this.nLabels
    let prev = -1
    for (let i = 0; i < n; i++) {
      if (i === except) continue
      if (prev >= 0 && this.cmpLabelNames(prev, i) >= 0) return false
      if (except >= 0 && i !== except && this.cmpLabelNames(except, i) === 0) return false
      prev = i
    }
    return true
  }

  private duplicateLabels(name: string): void {
    const names: string[] = []
    for (let i = 0; i < this.nLabels; i++) names.push(this.text.slice(this.lnS[i], this.lnE[i]))
    names.sort()
    for (let i = 1; i < names.length; i++) {
      if (names[i] === names[i - 1]) {
        this.err(
          'label-duplicate',
          `label ${show(names[i])} appears more than once in a sample of ${show(name)}`
        )
        return
      }
    }
  }

  /** Compares label names i and j like strings. */
  private cmpLabelNames(i: number, j: number): number {
    const text = this.text
    const a = this.lnS[i]
    const ae = this.lnE[i]
    const b = this.lnS[j]
    const be = this.lnE[j]
    const la = ae - a
    const lb = be - b
    const m = la < lb ? la : lb
    for (let k = 0; k < m; k++) {
      const d = text.charCodeAt(a + k) - text.charCodeAt(b + k)
      if (d !== 0) return d
    }
    return la - lb
  }
}

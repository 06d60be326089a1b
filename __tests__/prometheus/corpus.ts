/** The fixture corpus under __tests__/fixtures/prometheus: text/{valid,invalid}, openmetrics/{valid,invalid}. */
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

export const FIXTURES = resolve(import.meta.dirname, '..', 'fixtures', 'prometheus')
export const OPENMETRICS = 'application/openmetrics-text; version=1.0.0; charset=utf-8'
export const TEXT = 'text/plain; version=0.0.4; charset=utf-8'

export interface Fixture {
  /** e.g. text/invalid/histogram-inf-bucket--count-only.prom */
  id: string
  format: 'text' | 'openmetrics'
  valid: boolean
  /** invalid fixtures: the rule the file violates (its name before `--`) */
  rule: string
  text: string
  contentType: string
}

export function loadCorpus(): Fixture[] {
  const out: Fixture[] = []
  for (const format of ['text', 'openmetrics'] as const) {
    for (const kind of ['valid', 'invalid']) {
      const dir = join(FIXTURES, format, kind)
      for (const file of readdirSync(dir).sort()) {
        out.push({
          id: `${format}/${kind}/${file}`,
          format,
          valid: kind === 'valid',
          rule: kind === 'invalid' ? file.replace(/\.(prom|txt)$/, '').split('--')[0] : '',
          text: readFileSync(join(dir, file), 'utf8'),
          contentType: format === 'openmetrics' ? OPENMETRICS : TEXT
        })
      }
    }
  }
  return out
}

/** Every action's README carries the inputs/outputs reference generated from its action.yml, up to date. */
import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'
import { ACTION_DIRS } from '../scripts/actions.mjs'

const root = resolve(import.meta.dirname, '..')

describe('action READMEs', () => {
  it('hold the reference generated from action.yml (node scripts/action-docs.mjs)', () => {
    expect(() =>
      execFileSync(process.execPath, [join(root, 'scripts', 'action-docs.mjs'), '--check'], { stdio: 'pipe' })
    ).not.toThrow()
  })
  for (const [dir, file] of ACTION_DIRS.map(({ dir }) => [
    dir,
    dir === '.' ? 'README.md' : `${dir}/README.md`
  ])) {
    it(`${file} names every input and output of ${dir}/action.yml`, () => {
      const a = parse(readFileSync(join(root, dir, 'action.yml'), 'utf8')) as {
        inputs: Record<string, unknown>
        outputs: Record<string, unknown>
      }
      const text = readFileSync(join(root, file), 'utf8')
      const missing = [...Object.keys(a.inputs), ...Object.keys(a.outputs)].filter(
        n => !text.includes(`\`${n}\``)
      )
      expect(missing).toEqual([])
    })
  }
})

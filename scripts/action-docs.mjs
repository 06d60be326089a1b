#!/usr/bin/env node
// Writes the inputs/outputs reference of each action into its README, between
// <!-- action-docs:start --> and <!-- action-docs:end -->, from its action.yml (the single source).
// `node scripts/action-docs.mjs --check` exits 1 when a README is out of date (the test runs it).
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { ACTION_DIRS } from './actions.mjs'

const root = new URL('..', import.meta.url).pathname
const START = '<!-- action-docs:start -->'
const END = '<!-- action-docs:end -->'
/** [folder of the action.yml, its README], one per action (scripts/actions.mjs) */
export const READMES = ACTION_DIRS.map(({ dir }) => [dir, dir === '.' ? 'README.md' : `${dir}/README.md`])

const cell = s =>
  String(s ?? '')
    .replace(/\|/g, '\\|')
    .replace(/\n/g, ' ')
    .trim()

export function reference(dir) {
  const a = parse(readFileSync(join(root, dir, 'action.yml'), 'utf8'))
  const lines = ['| input | default | meaning |', '|---|---|---|']
  for (const [name, i] of Object.entries(a.inputs ?? {})) {
    const def =
      i.default === undefined || i.default === ''
        ? i.required
          ? '**required**'
          : ''
        : `\`${cell(i.default)}\``
    lines.push(`| \`${name}\` | ${def} | ${cell(i.description)} |`)
  }
  lines.push('', '| output | meaning |', '|---|---|')
  for (const [name, o] of Object.entries(a.outputs ?? {}))
    lines.push(`| \`${name}\` | ${cell(o.description)} |`)
  return `${START}\n<details><summary>Every input and output (from action.yml)</summary>\n\n${lines.join('\n')}\n\n</details>\n${END}`
}

export function render(dir, text) {
  const i = text.indexOf(START)
  const j = text.indexOf(END)
  if (i === -1 || j === -1) return null
  return text.slice(0, i) + reference(dir) + text.slice(j + END.length)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check')
  let stale = 0
  for (const [dir, file] of READMES) {
    const path = join(root, file)
    const text = readFileSync(path, 'utf8')
    const out = render(dir, text)
    if (out === null) {
      console.error(`${file}: no ${START} … ${END} markers`)
      stale++
    } else if (out !== text) {
      if (check) {
        console.error(`${file}: inputs/outputs reference out of date: run node scripts/action-docs.mjs`)
        stale++
      } else writeFileSync(path, out)
    }
  }
  process.exit(stale ? 1 : 0)
}

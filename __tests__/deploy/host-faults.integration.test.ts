/**
 * Host state damaged or missing, and a `compose up` that fails for a real reason, on real parts (sshd,
 * dockerd, docker-compose v1, a registry): a torn last journal line, a kept release's folder deleted by
 * hand, `current`'s own folder gone, a port another process holds. Each ends in a known state: a healthy
 * release serves, `current` names it, the journal parses, the lock is free, and the next deploy works.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import {
  appendFileSync,
  chownSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import {
  deploy,
  deployHeld,
  releaseDeploy,
  rollback,
  rollbackOn,
  type DeployOptions,
  type RollbackOptions
} from '../../src/lib/deploy/index.js'
import { parseJournal } from '../../src/lib/release/journal.js'
import { buildAppImage, removeRepository } from '../../src/testkit/images.js'
import { freePort, uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { startSshd, type Sshd } from '../../src/testkit/sshd.js'
import {
  connectTo,
  digestResolver,
  liveVersion,
  quietLog,
  readLedger,
  workspace,
  type Workspace
} from './helpers.js'

let reg: TestRegistry
let sshd: Sshd
let ws: Workspace
let repo: string

beforeAll(async () => {
  ;[reg, sshd] = await Promise.all([startRegistry({ auth: 'none' }), startSshd()])
  ws = workspace()
  repo = `${reg.host}/${uniqueName('damage')}/app`
  for (const v of ['v1', 'v2', 'v3']) {
    buildAppImage({ tag: `${repo}:${v}`, version: v })
    execFileSync('docker', ['push', '-q', `${repo}:${v}`], { stdio: 'ignore' })
  }
}, 120_000)

afterAll(async () => {
  ws?.cleanup()
  removeRepository(repo)
  await Promise.all([reg?.stop(), sshd?.stop()])
})

function opts(path: string, version: string, extra: Partial<DeployOptions> = {}): DeployOptions {
  return {
    hosts: [`${sshd.user}@${sshd.host}:${sshd.port}`],
    connect: connectTo(sshd),
    path,
    healthTimeout: 30,
    lockTimeout: 30,
    log: quietLog(),
    composeFiles: [ws.compose],
    images: [`web=${repo}:${version}`],
    version,
    autoRollback: true,
    keepReleases: 5,
    resolveDigest: digestResolver(reg),
    stableSeconds: 1,
    ...extra
  }
}

const rb = (path: string, extra: Partial<RollbackOptions> = {}): RollbackOptions => ({
  hosts: ['h'],
  connect: connectTo(sshd),
  path,
  healthTimeout: 30,
  lockTimeout: 30,
  log: quietLog(),
  stableSeconds: 1,
  ...extra
})

const state = (path: string): string => join(path, '.shipline')
const current = (path: string): string =>
  readlinkSync(join(state(path), 'current')).replace(/^releases\//, '')
/** every line parses; the journal's last word is a final entry */
function journalHolds(path: string): void {
  const j = parseJournal(readFileSync(join(state(path), 'ledger.jsonl'), 'utf8'))
  expect(j.damaged.map(d => d.line)).toEqual([])
  expect(j.entries[j.entries.length - 1].event).not.toBe('begin')
}
const lockFree = (path: string): void => {
  execFileSync('flock', ['-n', join(state(path), 'lock'), 'true'])
  expect(readdirSync(join(state(path), 'run'))).toEqual([])
}

async function twoReleases(): Promise<{ path: string; v1: string; v2: string }> {
  const path = ws.path()
  const a = await deploy(opts(path, 'v1', { envFile: 'APP_SECRET=s3cr3t-value\n' }))
  const b = await deploy(opts(path, 'v2'))
  expect([a.status, b.status]).toEqual(['deployed', 'deployed'])
  return { path, v1: a.releaseId, v2: b.releaseId }
}

describe('a torn last journal line', () => {
  it('neither deploy nor rollback hangs; the torn line is skipped with a warning and never glued onto', async () => {
    const { path, v1, v2 } = await twoReleases()
    appendFileSync(join(state(path), 'ledger.jsonl'), '{"event":"deploy","id":"torn-')
    const log = quietLog()
    const r = await deploy(opts(path, 'v3', { log }))
    expect(r.status).toBe('deployed')
    expect(log.lines.join('\n')).toMatch(/damaged line\(s\) in .*ledger\.jsonl skipped/)
    const text = readFileSync(join(state(path), 'ledger.jsonl'), 'utf8')
    const lines = text.trimEnd().split('\n')
    // the torn line stays as it was, on its own; every entry after it is whole
    expect(lines.filter(l => l.startsWith('{"event":"deploy","id":"torn-'))).toEqual([
      '{"event":"deploy","id":"torn-'
    ])
    const j = parseJournal(text)
    expect(j.damaged).toHaveLength(1)
    expect(j.entries.filter(e => e.event === 'deploy').map(e => e.version)).toEqual(['v1', 'v2', 'v3'])

    appendFileSync(join(state(path), 'ledger.jsonl'), '{"time":"2026-')
    const back = await rollback(rb(path))
    expect(back).toMatchObject({ status: 'rolled-back', toVersion: 'v2', releaseId: v2 })
    expect(await liveVersion(path)).toBe('v2')
    expect(current(path)).toBe(v2)
    lockFree(path)
    void v1
  })
})

describe('release folders deleted by hand', () => {
  it('a rollback to a release whose folder is gone is refused before anything changes, naming what is kept', async () => {
    const { path, v1, v2 } = await twoReleases()
    rmSync(join(state(path), 'releases', v1), { recursive: true, force: true })
    const before = readFileSync(join(state(path), 'ledger.jsonl'), 'utf8')
    await expect(rollback(rb(path))).rejects.toThrow(
      new RegExp(
        `the release live before the current one, ${v1}, is no longer kept on the host \\(its folder is gone\\)\\. Kept: v2 \\(${v2}\\)`
      )
    )
    await expect(rollback(rb(path, { to: v1 }))).rejects.toThrow(
      /no release with version or id .* is kept on the host \(the journal knows it, but its folder is gone\)/
    )
    expect(readFileSync(join(state(path), 'ledger.jsonl'), 'utf8')).toBe(before)
    expect(await liveVersion(path)).toBe('v2')
    lockFree(path)
  })

  it("current's own folder gone: the deploy says so and refuses to guess the .env; with env-file it deploys", async () => {
    const { path, v2 } = await twoReleases()
    rmSync(join(state(path), 'releases', v2), { recursive: true, force: true })
    await expect(deploy(opts(path, 'v3'))).rejects.toThrow(
      new RegExp(
        `names release ${v2}, whose folder is missing, so its \\.env cannot be carried over and it cannot be put back\\. Set 'env-file'`
      )
    )
    expect(await liveVersion(path)).toBe('v2')
    const log = quietLog()
    const r = await deploy(opts(path, 'v3', { envFile: 'APP_SECRET=again\n', log }))
    expect(r.status).toBe('deployed')
    expect(log.lines.join('\n')).toMatch(/whose folder is missing/)
    expect(await liveVersion(path)).toBe('v3')
    journalHolds(path)
    lockFree(path)
  })
})

describe('compose up fails for a real reason', () => {
  let blocker: Server
  let port: number
  beforeAll(async () => {
    port = await freePort()
    blocker = createServer()
    await new Promise<void>(r => blocker.listen(port, '127.0.0.1', () => r()))
  })
  afterAll(() => new Promise<void>(r => blocker.close(() => r())))

  it('a port another process holds: the previous release is put back and serves; rolled-back', async () => {
    const { path, v2 } = await twoReleases()
    const taken = join(ws.dir, `taken-${port}.yml`)
    writeFileSync(taken, `version: "3.8"\nservices:\n  web:\n    ports: ["127.0.0.1:${port}:8080"]\n`)
    const r = await deploy(opts(path, 'v3', { composeFiles: [ws.compose, taken] }))
    expect(r.status).toBe('rolled-back')
    expect(r.error).toMatch(
      /docker-compose up of v3 failed: .*port is already allocated|address already in use/
    )
    expect(r.releaseId).toBe(v2)
    expect(await liveVersion(path)).toBe('v2')
    expect(current(path)).toBe(v2)
    expect(readLedger(path).pop()).toMatchObject({ event: 'auto-rollback', release: v2 })
    journalHolds(path)
    lockFree(path)
    // and a one-click rollback still means the release before v2, not a no-op
    const back = await rollback(rb(path))
    expect(back).toMatchObject({ status: 'rolled-back', toVersion: 'v1' })
    const next = await deploy(opts(path, 'v3'))
    expect(next.status).toBe('deployed')
    expect(await liveVersion(path)).toBe('v3')
  })
})

describe("ship's locks stay held from the deploy through the put-back", () => {
  it('a deploy started during the smoke test waits, and is not overwritten by the put-back', async () => {
    const { path, v1 } = await twoReleases()
    const held = await deployHeld(opts(path, 'v3'))
    expect(held.result.status).toBe('deployed')
    // another deploy arrives while ship smoke-tests v3: it must wait for the lock
    const otherLog = quietLog()
    const other = deploy(opts(path, 'v1', { log: otherLog, lockTimeout: 120 }))
    let waiting = false
    for (let i = 0; i < 100 && !waiting; i++) {
      await new Promise(r => setTimeout(r, 100))
      waiting = otherLog.lines.some(l => /another deploy holds the lock/.test(l))
    }
    expect(waiting).toBe(true)
    // the smoke test failed: v2 goes back under the same lock
    const back = await rollbackOn(held.fleet, {
      ...rb(path),
      to: held.result.hosts[0].previousReleaseId,
      givingUp: 'smoke test failed'
    })
    expect(back).toMatchObject({ status: 'rolled-back', toVersion: 'v2' })
    await releaseDeploy(held, { keepReleases: 5 })
    const r = await other
    expect(r).toMatchObject({ status: 'deployed', version: 'v1', previousVersion: 'v2' })
    expect(await liveVersion(path)).toBe('v1')
    const finals = readLedger(path).map(e => `${e.event} ${e.version}`)
    expect(finals.slice(-3)).toEqual(['deploy v3', 'auto-rollback v2', 'deploy v1'])
    journalHolds(path)
    lockFree(path)
    void v1
  })
})

describe('a state folder that is not what it should be', () => {
  it('refuses a .shipline that is a symbolic link, or owned by another user, naming the path, before any change', async () => {
    const path = ws.path()
    const elsewhere = ws.path()
    mkdirSync(elsewhere, { recursive: true })
    mkdirSync(path, { recursive: true })
    symlinkSync(elsewhere, state(path))
    await expect(deploy(opts(path, 'v1'))).rejects.toThrow(
      new RegExp(`${state(path).replace(/[.]/g, '\\.')} is a symbolic link`)
    )
    expect(readdirSync(elsewhere)).toEqual([])
    rmSync(state(path))
    mkdirSync(state(path), { mode: 0o700 })
    chownSync(state(path), 65534, 65534)
    await expect(deploy(opts(path, 'v1'))).rejects.toThrow(/is not owned by the SSH user root: chown it/)
    expect(readdirSync(state(path))).toEqual([])
  })
})

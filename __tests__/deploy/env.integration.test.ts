/**
 * env / env-secrets on real parts (a real sshd as the host, the real Docker engine with docker-compose v1,
 * a real registry): the release's .env as the containers see it, the host-side merge without env-file,
 * the comparison by key with keyed hashes (no live secret travels), and a rollback restoring the .env of
 * the release it goes to.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { projectName } from '../../src/lib/compose/layout.js'
import { deploy, rollback, summaryTable, type DeployOptions } from '../../src/lib/deploy/index.js'
import { isUserError } from '../../src/lib/errors.js'
import { buildAppImage, removeRepository } from '../../src/testkit/images.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { connectTo, digestResolver, quietLog, workspace, type Workspace } from './helpers.js'

let reg: TestRegistry
let sshd: Sshd
let ws: Workspace
let repo: string

beforeAll(async () => {
  ;[reg, sshd] = await Promise.all([startRegistry({ auth: 'none' }), startSshd()])
  ws = workspace()
  repo = `${reg.host}/${uniqueName('env')}/app`
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
    healthTimeout: 60,
    lockTimeout: 120,
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

/** APP_SECRET as the running web container sees it */
const containerSecret = (path: string): string => {
  const id = execFileSync(
    'docker',
    [
      'ps',
      '-q',
      '--filter',
      `label=com.docker.compose.project=${projectName(path)}`,
      '--filter',
      'label=com.docker.compose.service=web'
    ],
    { encoding: 'utf8' }
  ).trim()
  return execFileSync('docker', ['exec', id, 'sh', '-c', 'echo "$APP_SECRET"'], { encoding: 'utf8' }).trim()
}
const envOf = (path: string, id: string): string =>
  readFileSync(join(path, '.shipline', 'releases', id, '.env'), 'utf8')

describe('env and env-secrets', () => {
  it('merge into the .env, compare by key without printing secrets, and a rollback restores the old .env', async () => {
    const path = ws.path()
    const r1 = await deploy(opts(path, 'v1', { envFile: 'APP_SECRET=first-secret-1\nKEEP=1\n' }))
    expect(r1.status).toBe('deployed')
    expect(containerSecret(path)).toBe('first-secret-1')

    // no env-file: merged on the host into a copy of the live .env (KEEP stays)
    const log = quietLog()
    const r2 = await deploy({
      ...opts(path, 'v2', { env: 'LOG_LEVEL=debug', envSecrets: 'APP_SECRET=second-secret-2' }),
      log
    })
    expect(r2.status).toBe('deployed')
    expect(envOf(path, r2.releaseId)).toBe('KEEP=1\nLOG_LEVEL=debug\nAPP_SECRET=second-secret-2\n')
    expect(statSync(join(path, '.shipline', 'releases', r2.releaseId, '.env')).mode & 0o777).toBe(0o600)
    expect(containerSecret(path)).toBe('second-secret-2')
    expect(r2.hosts[0].env).toBe('+LOG_LEVEL=debug ~APP_SECRET (0 unchanged)')
    const summary = summaryTable('deploy-ssh', r2.hosts)
    expect(summary).toContain('+LOG_LEVEL=debug ~APP_SECRET')
    for (const text of [summary, log.lines.join('\n')]) {
      expect(text).not.toContain('second-secret-2')
      expect(text).not.toContain('first-secret-1')
    }

    // a whole env-file again: keys it leaves out are removed
    const r3 = await deploy(opts(path, 'v3', { envFile: 'APP_SECRET=second-secret-2\nNEW=1\n' }))
    expect(r3.hosts[0].env).toBe('+NEW -KEEP -LOG_LEVEL (1 unchanged)')

    // one click back: v2 runs with v2's .env
    const back = await rollback({
      hosts: ['h'],
      connect: connectTo(sshd),
      path,
      healthTimeout: 60,
      lockTimeout: 120,
      log: quietLog(),
      stableSeconds: 1
    })
    expect(back.toVersion).toBe('v2')
    expect(containerSecret(path)).toBe('second-secret-2')
    const again = await rollback({
      hosts: ['h'],
      connect: connectTo(sshd),
      path,
      to: 'v1',
      healthTimeout: 60,
      lockTimeout: 120,
      log: quietLog(),
      stableSeconds: 1
    })
    expect(again.toVersion).toBe('v1')
    expect(containerSecret(path)).toBe('first-secret-1')
  }, 300_000)

  it('bad lines and a key in both inputs are refused before any host is contacted', async () => {
    let connects = 0
    const counting = {
      connect: async (l: string) => {
        connects++
        return connectTo(sshd)(l)
      }
    }
    for (const bad of [
      { env: 'NOT A LINE' },
      { env: 'A=1', envSecrets: 'A=2' },
      { envSecrets: '1X=secret-zz' }
    ]) {
      try {
        await deploy({ ...opts(ws.path(), 'v1', bad), ...counting })
        throw new Error('expected a refusal')
      } catch (e) {
        expect(isUserError(e)).toBe(true)
        expect((e as Error).message).toMatch(/^Inputs? 'env/)
        expect((e as Error).message).not.toContain('secret-zz')
      }
    }
    expect(connects).toBe(0)
  }, 60_000)
})

/**
 * The compose-host pieces without a host: input validation, the Compose v2 / v1 command lines (v2 is not
 * installed here, so its path is tested at the argument level: a recording `docker` stand-in on PATH run
 * through the same scripts), the state parser, the default rollback target and the prune plan.
 */
import { afterAll, describe, expect, it } from '@jest/globals'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ReleaseStore,
  parseState,
  previousRelease,
  prunePlan,
  type HostState,
  type ReleaseMeta
} from '../../src/lib/release/store.js'
import { ComposeRuntime } from '../../src/lib/runtime/compose.js'
import { composeArgv, layout, projectName } from '../../src/lib/compose/layout.js'
import {
  makeReleaseId,
  parseImagesInput,
  RELEASE_ID_RE,
  validateProjectPath,
  validateVersion
} from '../../src/lib/compose/validate.js'
import { checkServices, overrideFile, readComposeFiles } from '../../src/lib/deploy/release.js'
import { pickTarget } from '../../src/lib/deploy/rollback.js'
import { isUserError } from '../../src/lib/errors.js'
import { localRemote } from '../../src/testkit/local-remote.js'
import { tar } from '../../src/lib/compose/tar.js'
import { execFileSync } from 'node:child_process'
import { statSync } from 'node:fs'

const tmp = mkdtempSync(join(tmpdir(), 'shipline-deploy-unit-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

const userError = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    expect(isUserError(e)).toBe(true)
    return (e as Error).message
  }
  throw new Error('no error')
}

describe('validation', () => {
  it('accepts plain absolute paths and refuses the rest with a fix', () => {
    expect(validateProjectPath('/opt/app/')).toBe('/opt/app')
    expect(validateProjectPath('/srv/shop-api_2')).toBe('/srv/shop-api_2')
    for (const bad of [
      '',
      'opt/app',
      '/',
      '/opt',
      '/opt/../etc',
      '/opt/./a',
      '/opt//a',
      '/opt/a b',
      '/opt/$(x)',
      '/opt/`x`',
      '/opt/a;b',
      "/opt/a'b",
      '/opt/-rf'
    ]) {
      expect(userError(() => validateProjectPath(bad))).toMatch(/Input 'path'/)
    }
  })

  it('parses images lines and refuses bad references, duplicates and bad service names', () => {
    const m = parseImagesInput([
      'web=ghcr.io/acme/shop:1.2',
      `worker=127.0.0.1:5000/a/b@sha256:${'a'.repeat(64)}`,
      'db=postgres:16'
    ])
    expect(m.get('web')).toMatchObject({
      registry: 'ghcr.io',
      repository: 'acme/shop',
      tag: '1.2',
      name: 'ghcr.io/acme/shop'
    })
    expect(m.get('worker')).toMatchObject({ registry: '127.0.0.1:5000', digest: `sha256:${'a'.repeat(64)}` })
    expect(m.get('db')).toMatchObject({
      registry: 'docker.io',
      repository: 'library/postgres',
      name: 'docker.io/library/postgres'
    })
    for (const bad of [
      ['web'],
      ['web=Ghcr.io/A:1'],
      ['web=a:b c'],
      ['-x=a:1'],
      ['web=a:1', 'web=b:1'],
      ['web=a@sha256:12']
    ]) {
      userError(() => parseImagesInput(bad))
    }
  })

  it('versions and release ids', () => {
    expect(validateVersion(' 1.2.3+build ')).toBe('1.2.3+build')
    userError(() => validateVersion('a b'))
    userError(() => validateVersion(''))
    const id = makeReleaseId('feature/x:1', new Date('2026-01-02T03:04:05.678Z'))
    expect(id).toBe('20260102T030405678Z-feature-x-1')
    expect(RELEASE_ID_RE.test(id)).toBe(true)
    expect(RELEASE_ID_RE.test('../../etc')).toBe(false)
  })

  it('reads compose files, keeps their version in the override, refuses files without services', () => {
    const f = join(tmp, 'compose.yaml')
    writeFileSync(f, 'version: "3.8"\nservices:\n  web: {image: x}\n  db: {image: y}\n')
    const set = readComposeFiles([f])
    expect(set).toMatchObject({ services: ['web', 'db'], version: '3.8', files: [{ name: 'compose.yaml' }] })
    expect(overrideFile({ web: 'r/a@sha256:1' }, '3.8')).toMatch(
      /version: "3.8"\nservices:\n {2}web:\n {4}image: r\/a@sha256:1/
    )
    writeFileSync(join(tmp, 'bad.yml'), 'foo: 1\n')
    expect(userError(() => readComposeFiles([join(tmp, 'bad.yml')]))).toMatch(/services/)
    expect(userError(() => readComposeFiles([join(tmp, 'missing.yml')]))).toMatch(/cannot read/)
  })
})

describe('release upload archive', () => {
  it('is a ustar archive the system tar extracts with contents and modes', () => {
    const out = join(tmp, 'untar')
    mkdirSync(out)
    const big = 'x'.repeat(1500)
    execFileSync('tar', ['-xf', '-', '-C', out], {
      input: tar([
        { name: 'a.yml', data: 'services: {}\n' },
        { name: '.env', data: 'K=v\n', mode: 0o600 },
        { name: 'big', data: big }
      ])
    })
    expect(readFileSync(join(out, 'a.yml'), 'utf8')).toBe('services: {}\n')
    expect(readFileSync(join(out, '.env'), 'utf8')).toBe('K=v\n')
    expect(statSync(join(out, '.env')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(out, 'big'), 'utf8')).toBe(big)
    expect(() => tar([{ name: '../x', data: '' }])).toThrow()
  })
})

describe('Compose v2 and v1 command lines', () => {
  it('builds the same options for both, with the project name fixed per path', () => {
    const p = projectName('/srv/Shop.API')
    expect(p).toMatch(/^shop-api-[0-9a-f]{8}$/)
    expect(projectName('/srv/Shop.API')).toBe(p)
    expect(projectName('/other/Shop.API')).not.toBe(p)
    const dir = '/srv/app/.shipline/releases/r1'
    expect(composeArgv('v2', 'app-1', dir, ['docker-compose.yml', 'shipline.override.yml'], '.env')).toEqual([
      'docker',
      'compose',
      '--project-name',
      'app-1',
      '--project-directory',
      dir,
      '--file',
      `${dir}/docker-compose.yml`,
      '--file',
      `${dir}/shipline.override.yml`,
      '--env-file',
      `${dir}/.env`
    ])
    expect(composeArgv('v1', 'app-1', dir, ['a.yml'])).toEqual([
      'docker-compose',
      '--project-name',
      'app-1',
      '--project-directory',
      dir,
      '--file',
      `${dir}/a.yml`
    ])
  })

  it('detects v2 when `docker compose` answers and drives it through the same scripts', async () => {
    // a stand-in `docker` that has the compose plugin and records each call
    const bin = join(tmp, 'bin')
    const record = join(tmp, 'calls.log')
    mkdirSync(bin, { recursive: true })
    writeFileSync(
      join(bin, 'docker'),
      `#!/bin/sh\nprintf '%s\\n' "$*" >> ${record}\nif [ "$1" = compose ] && [ "$2" = version ]; then echo "Docker Compose version v2.29.0"; fi\nexit 0\n`
    )
    chmodSync(join(bin, 'docker'), 0o755)
    const remote = localRemote('local', { env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } })
    try {
      const log = { info: () => undefined, warning: () => undefined }
      const path = join(tmp, 'proj')
      const store = new ReleaseStore(remote, { path, log })
      const ch = new ComposeRuntime(store)
      const state = await store.lock(5, 'unit test')
      ch.accept(state)
      expect(state.compose).toBe('v2')
      const meta: ReleaseMeta = {
        id: '20260101T000000000Z-v1',
        version: 'v1',
        time: '',
        files: ['docker-compose.yml', 'shipline.override.yml'],
        env: true,
        images: {},
        services: ['web'],
        updated: ['web']
      }
      await ch.start(meta, undefined, '')
      await ch.start(meta, ['web'], '')
      await store.finish()
      const calls = readFileSync(record, 'utf8').split('\n')
      const dir = `${path}/.shipline/releases/${meta.id}`
      const head = `compose --project-name ${projectName(path)} --project-directory ${dir} --file ${dir}/docker-compose.yml --file ${dir}/shipline.override.yml --env-file ${dir}/.env`
      expect(calls).toContain(`${head} up -d --remove-orphans`)
      expect(calls).toContain(`${head} up -d --no-deps web`)
    } finally {
      await remote.close()
    }
  })
})

describe('state, default rollback target, prune plan', () => {
  const meta = (id: string, version: string, images: Record<string, string> = {}): ReleaseMeta => ({
    id,
    version,
    time: '',
    files: [],
    env: false,
    images,
    services: ['web'],
    updated: ['web']
  })
  const A = '20260101T000000000Z-a'
  const B = '20260102T000000000Z-b'
  const C = '20260103T000000000Z-c'
  const D = '20260104T000000000Z-d'

  it('parses the lock script output', () => {
    const out = `WAITING someone\nLOCKED\ncompose v1\ncurrent ${B}\nrelease ${A} ${JSON.stringify(meta(A, 'a'))}\nrelease ${B} ${JSON.stringify(meta(B, 'b'))}\nledger {"time":"t","event":"deploy","release":"${B}","from":"${A}"}\nledger {torn\nREADY\n...`
    const s = parseState(out)
    expect(s.compose).toBe('v1')
    expect(s.current).toBe(B)
    expect([...s.releases.keys()]).toEqual([A, B])
    expect(s.ledger).toHaveLength(1)
    expect(previousRelease(s)).toBe(A)
  })

  it('the default target is what was live before; reverts and auto-rollbacks keep the older predecessor', () => {
    const releases = new Map([A, B, C].map((id, i) => [id, meta(id, 'abc'[i])]))
    const s: HostState = {
      compose: 'v1',
      current: B,
      releases,
      ledger: [
        { time: '', event: 'deploy', release: A },
        { time: '', event: 'deploy', release: B, from: A },
        { time: '', event: 'deploy', release: C, from: B },
        { time: '', event: 'revert', release: B, from: A, attempted: C }
      ]
    }
    expect(previousRelease(s)).toBe(A)
    expect(pickTarget(s, undefined, 'h').id).toBe(A)
    expect(pickTarget(s, 'c', 'h').id).toBe(C)
    expect(pickTarget(s, B, 'h').id).toBe(B)
    expect(userError(() => pickTarget(s, 'zzz', 'h'))).toMatch(/no release with version or id 'zzz'/)
    expect(userError(() => pickTarget({ ...s, current: undefined }, undefined, 'h'))).toMatch(
      /nothing has been deployed/
    )
  })

  it('prunes beyond keep-releases, never the current one or its predecessor, and only images no kept release needs', () => {
    const releases = new Map([
      [A, meta(A, 'a', { web: 'r@sha256:a' })],
      [B, meta(B, 'b', { web: 'r@sha256:b', db: 'db@sha256:1' })],
      [C, meta(C, 'c', { web: 'r@sha256:c', db: 'db@sha256:1' })],
      [D, meta(D, 'd', { web: 'r@sha256:d', db: 'db@sha256:1' })]
    ])
    // D is current and was deployed from A (after rollbacks): A must stay
    const s: HostState = {
      compose: 'v1',
      current: D,
      releases,
      ledger: [{ time: '', event: 'deploy', release: D, from: A }]
    }
    const plan = prunePlan(s, D, 2)
    expect(plan.releases.sort()).toEqual([B, C])
    expect(plan.images.sort()).toEqual(['r@sha256:b', 'r@sha256:c'])
    expect(prunePlan(s, D, 10)).toEqual({ releases: [], images: [] })
  })

  it('lays the host out under <path>/.shipline', () => {
    const l = layout('/srv/app')
    expect(l).toMatchObject({
      state: '/srv/app/.shipline',
      ledger: '/srv/app/.shipline/ledger.jsonl',
      current: '/srv/app/.shipline/current'
    })
    expect(l.release(A)).toBe(`/srv/app/.shipline/releases/${A}`)
  })
})

describe('images and services agree', () => {
  it('refuses an image for a service that services does not update, naming both inputs', () => {
    const compose = { files: [], services: ['web', 'worker'] }
    const msg = userError(() =>
      checkServices({
        compose,
        images: ['web=r/a@sha256:' + 'a'.repeat(64), 'worker=r/b@sha256:' + 'b'.repeat(64)],
        services: ['web']
      })
    )
    expect(msg).toMatch(/Input 'images' names worker, which input 'services' does not update \(web\)/)
    expect(
      checkServices({ compose, images: ['web=r/a@sha256:' + 'a'.repeat(64)], services: ['web'] }).updated
    ).toEqual(['web'])
  })
})

/** Build secrets, SSH, extra contexts and cache lines: parsed and refused before anything is built. */
import { afterAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  classicCacheFrom,
  parseBuildContexts,
  parseBuildSecrets,
  parseCacheLines,
  parseSsh,
  secretLikeBuildArgs
} from '../../src/lib/build/secrets.js'
import { UserError } from '../../src/lib/errors.js'

const dir = mkdtempSync(join(tmpdir(), 'shipline-bp-secrets-'))
const file = join(dir, 'npmrc')
writeFileSync(file, '//registry.npmjs.org/:_authToken=x\n', { mode: 0o600 })
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const parse = (over: Partial<{ secrets: string; secretEnvs: string; secretFiles: string }>, env = {}) =>
  parseBuildSecrets({ secrets: '', secretEnvs: '', secretFiles: '', ...over }, env, dir)

describe('build secrets', () => {
  it('reads id=value, id=ENVVAR and id=path lines (values may hold = and spaces)', () => {
    const r = parse(
      {
        secrets: 'GIT_AUTH_TOKEN=abc=def\n  other = with space  ',
        secretEnvs: 'aws=AWS_KEY',
        secretFiles: 'npmrc=npmrc'
      },
      { AWS_KEY: 'k' }
    )
    expect(r.secrets).toEqual([
      { id: 'GIT_AUTH_TOKEN', value: 'abc=def' },
      { id: 'other', value: 'with space' },
      { id: 'aws', env: 'AWS_KEY' },
      { id: 'npmrc', src: file }
    ])
    expect(r.warnings).toEqual([])
  })
  it('a malformed secrets line is refused without showing it (it may be the secret itself)', () => {
    const e = (() => {
      try {
        parse({ secrets: 'ok=1\nhunter2-the-secret' })
      } catch (err) {
        return err as Error
      }
    })()
    expect(e).toBeInstanceOf(UserError)
    expect(e!.message).toBe(
      "Input 'secrets': line 2 (not shown: it may hold a secret) is not of the form id=value. Write one id=value per line."
    )
    expect(() => parse({ secrets: '=value' })).toThrow(/line 1 .*not of the form id=value/)
    expect(() => parse({ secrets: 'a,b=value' })).toThrow(
      /^Input 'secrets': id 'a,b' on line 1 is not a valid secret id/
    )
  })
  it('an empty value is skipped with a warning (a secret a fork PR does not get)', () => {
    const r = parse({ secrets: 'tok=', secretEnvs: 'e=EMPTY' }, { EMPTY: '' })
    expect(r.secrets).toEqual([])
    expect(r.warnings).toEqual([
      expect.stringMatching(/^Input 'secrets': secret 'tok' is empty/),
      expect.stringMatching(/^Input 'secret-envs': secret 'e' is empty \(EMPTY is empty\)/)
    ])
  })
  it('refuses an unset variable, a missing file and an id given twice, naming the input', () => {
    expect(() => parse({ secretEnvs: 'tok=NOPE' })).toThrow(
      /^Input 'secret-envs': environment variable NOPE \(secret 'tok'\) is not set\. Set it in the step's 'env:'/
    )
    expect(() => parse({ secretEnvs: 'tok=not-a-name' })).toThrow(/is not an environment variable name/)
    expect(() => parse({ secretFiles: 'f=missing.txt' })).toThrow(
      /^Input 'secret-files': 'missing.txt' \(secret 'f'\) is not a file\./
    )
    expect(() => parse({ secretFiles: `f=${dir}` })).toThrow(/is not a file/)
    expect(() => parse({ secrets: 'a=1', secretFiles: 'a=npmrc' })).toThrow(
      /^Input 'secret-files': secret id 'a' is also given in 'secrets'/
    )
  })
})

describe('ssh', () => {
  it('default needs an agent; id=path needs the path', () => {
    expect(parseSsh('default', { SSH_AUTH_SOCK: '/tmp/agent' }, dir)).toEqual(['default'])
    expect(parseSsh('deploy=npmrc', {}, dir)).toEqual([`deploy=${file}`])
    expect(() => parseSsh('default', {}, dir)).toThrow(
      /^Input 'ssh': 'default' forwards the SSH agent but SSH_AUTH_SOCK is not set/
    )
    expect(() => parseSsh('k=nope', {}, dir)).toThrow(/^Input 'ssh': 'nope' \(id 'k'\) does not exist/)
    expect(() => parseSsh('a b', {}, dir)).toThrow(/^Input 'ssh': 'a b' is not 'default' or id=path/)
  })
})

describe('build contexts and cache lines', () => {
  it('build-contexts are name=value lines', () => {
    expect([...parseBuildContexts('base=docker-image://alpine:3\nsrc = ../lib')]).toEqual([
      ['base', 'docker-image://alpine:3'],
      ['src', '../lib']
    ])
    expect(() => parseBuildContexts('nothing')).toThrow(
      /^Input 'build-contexts': 'nothing' is not of the form name=path/
    )
  })
  it('cache lines are type=… lists (a bare reference for cache-from)', () => {
    expect(
      parseCacheLines('cache-from', 'type=registry, ref=ghcr.io/o/app:cache\nghcr.io/o/app:stage')
    ).toEqual(['type=registry,ref=ghcr.io/o/app:cache', 'ghcr.io/o/app:stage'])
    expect(parseCacheLines('cache-to', 'type=gha,mode=max')).toEqual(['type=gha,mode=max'])
    expect(() => parseCacheLines('cache-to', 'ghcr.io/o/app:cache')).toThrow(
      /^Input 'cache-to': .* is not of the form type=/
    )
    expect(() => parseCacheLines('cache-from', 'type=local,src')).toThrow(/is not a list of key=value pairs/)
    expect(() => parseCacheLines('cache-from', 'ref=x')).toThrow(/names no type/)
  })
  it('the classic builder takes image references from cache-from, nothing else', () => {
    expect(classicCacheFrom(['type=registry,ref=r/app:cache', 'r/app:stage'])).toEqual([
      'r/app:cache',
      'r/app:stage'
    ])
    expect(() => classicCacheFrom(['type=gha'])).toThrow(
      /^Input 'cache-from': 'type=gha' needs buildx; .* Add docker\/setup-buildx-action/
    )
    expect(() => classicCacheFrom(['type=registry,ref=r/app:c,mode=max'])).toThrow(/needs buildx/)
  })
})

describe('build-args that look like secrets', () => {
  it('names tokens, passwords, secrets and secret keys, not any *_KEY', () => {
    const secretLike = ['NPM_TOKEN', 'GITHUB_TOKEN', 'token', 'DB_PASSWORD', 'MYSECRETTHING']
    const keys = ['AWS_ACCESS_KEY', 'STRIPE_API_KEY', 'GPG_PRIVATE_KEY']
    const plain = ['VERSION', 'CACHE_KEY', 'SORT_KEY', 'TOKENIZER_MODEL']
    expect(secretLikeBuildArgs([...secretLike, ...plain, ...keys])).toEqual([...secretLike, ...keys])
  })
})

/**
 * target: swarm without a swarm: the stack override (images pinned by digest, start-first updates) and the
 * stack deploy script's reading of the release .env, driven through a recording `docker` on PATH. On a
 * real single-node swarm over a real sshd: swarm.integration.test.ts.
 */
import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { overrideFile } from '../../src/lib/deploy/release.js'
import { stackVersion, swarmOverride, validateStackName } from '../../src/lib/swarm/host.js'
import { STACK_DEPLOY_SCRIPT } from '../../src/lib/swarm/scripts.js'

describe('swarm override', () => {
  it('pins images and injects start-first updates for the updated services', () => {
    const o = swarmOverride(
      overrideFile({ app: 'r/app@sha256:' + 'a'.repeat(64), db: 'r/db@sha256:' + 'b'.repeat(64) }),
      ['app']
    )
    expect(o).toContain('version: "3.8"')
    expect(o).toMatch(
      /app:\n {4}image: r\/app@sha256:a+\n {4}deploy:\n {6}update_config:\n {8}order: start-first/
    )
    expect(o).not.toMatch(/db:[\s\S]*deploy/)
    expect(stackVersion('3.9')).toBe('3.9')
    expect(stackVersion('3.2')).toBe('3.8')
    expect(stackVersion(undefined)).toBe('3.8')
    expect(() => validateStackName('-x')).toThrow(/stack name/)
  })
})

describe('the release .env reaches the stack deploy only, parsed as Compose does', () => {
  it('strips quotes and comments, skips keys that are no names or would steer docker, never evaluates values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shipline-swarm-env-'))
    try {
      const bin = join(dir, 'bin')
      mkdirSync(bin)
      // a recording docker: `info` says manager; `stack deploy` records its own environment
      writeFileSync(
        join(bin, 'docker'),
        `#!/bin/sh\nif [ "$1" = info ]; then echo true; exit 0; fi\nenv > ${dir}/env.txt\n`,
        { mode: 0o755 }
      )
      const envFile = join(dir, '.env')
      writeFileSync(
        envFile,
        [
          'GREETING="hello v1"',
          'spring.profiles.active=prod',
          'DOCKER_HOST=tcp://127.0.0.1:9',
          'PATH=/nonexistent',
          "export SINGLE='it is'   ",
          'PLAIN=abc # a comment',
          'HASH=a#b',
          'CMD=$(touch ' + dir + '/evaluated)',
          '# comment',
          'WIN=crlf\r',
          ''
        ].join('\n')
      )
      // the caller's environment without a DOCKER_HOST of its own (the unit lane runs with one pointing
      // nowhere): a DOCKER_HOST that reaches `stack deploy` could then only come from the .env
      const callerEnv: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}` }
      delete callerEnv.DOCKER_HOST
      const out = execFileSync(
        'sh',
        ['-c', STACK_DEPLOY_SCRIPT, 'sh', join(dir, 'cfg'), '', '', 'st', envFile, '-c', 'f.yml'],
        {
          encoding: 'utf8',
          env: callerEnv,
          input: ''
        }
      )
      expect(out).toMatch(/skip spring\.profiles\.active: not a variable name/)
      expect(out).toMatch(/skip DOCKER_HOST: it would steer docker/)
      expect(out).toMatch(/skip PATH: it would steer docker/)
      const env = readFileSync(join(dir, 'env.txt'), 'utf8').split('\n')
      expect(env).toEqual(
        expect.arrayContaining([
          'GREETING=hello v1',
          'SINGLE=it is',
          'PLAIN=abc',
          'HASH=a#b',
          'WIN=crlf',
          `CMD=$(touch ${dir}/evaluated)`
        ])
      )
      expect(env.find(l => l.startsWith('PATH='))).toBe(`PATH=${bin}:${process.env.PATH}`)
      expect(env.some(l => l.startsWith('DOCKER_HOST='))).toBe(false)
      expect(existsSync(join(dir, 'evaluated'))).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

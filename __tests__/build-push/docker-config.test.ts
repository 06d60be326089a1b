/** The temporary Docker config folder: seeded from the user's config without credential stores, removed safely. */
import { afterAll, describe, expect, it } from '@jest/globals'
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  configCredential,
  createDockerConfig,
  removeDockerConfig,
  userConfigDir
} from '../../src/lib/docker/config.js'

describe('temporary Docker config', () => {
  const root = mkdtempSync(join(tmpdir(), 'shipline-bp-config-'))
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('starts from the user config minus credential stores and earlier logins to our registry', () => {
    const user = join(root, 'user-docker')
    mkdirSync(join(user, 'cli-plugins'), { recursive: true })
    mkdirSync(join(user, 'buildx'))
    writeFileSync(join(user, 'cli-plugins', 'docker-buildx'), '#!/bin/sh\n')
    writeFileSync(
      join(user, 'config.json'),
      JSON.stringify({
        auths: { 'ghcr.io': { auth: 'b2xkOm9sZA==' }, 'registry.example.com': { auth: 'eDp5' } },
        credsStore: 'desktop',
        credHelpers: { 'ghcr.io': 'gh', '123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login' },
        detachKeys: 'ctrl-e,e'
      })
    )
    const c = createDockerConfig(join(root, 'runner-temp'), {
      registry: 'ghcr.io',
      env: { DOCKER_CONFIG: user }
    })
    expect(c.dir).toMatch(/\/runner-temp\/shipline-docker-[^/]+$/)
    expect(statSync(c.dir).mode & 0o777).toBe(0o700)
    expect(statSync(join(c.dir, 'config.json')).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(join(c.dir, 'config.json'), 'utf8'))).toEqual({
      auths: { 'registry.example.com': { auth: 'eDp5' } },
      credHelpers: { '123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login' },
      detachKeys: 'ctrl-e,e'
    })
    expect(c.env).toEqual({ DOCKER_CONFIG: c.dir, BUILDX_CONFIG: join(user, 'buildx') })
    expect(lstatSync(join(c.dir, 'cli-plugins')).isSymbolicLink()).toBe(true)
    // removing unlinks the plugin folder link, never what it points to
    expect(removeDockerConfig(c.dir)).toBe(true)
    expect(existsSync(c.dir)).toBe(false)
    expect(existsSync(join(user, 'cli-plugins', 'docker-buildx'))).toBe(true)
    expect(JSON.parse(readFileSync(join(user, 'config.json'), 'utf8')).credsStore).toBe('desktop')
  })

  it('starts empty without a user config, and uses ~/.docker by default', () => {
    const c = createDockerConfig(root, { env: { HOME: join(root, 'nohome') } })
    expect(JSON.parse(readFileSync(join(c.dir, 'config.json'), 'utf8'))).toEqual({})
    expect(c.env).toEqual({ DOCKER_CONFIG: c.dir })
    expect(userConfigDir({ HOME: '/home/u' })).toBe('/home/u/.docker')
    removeDockerConfig(c.dir)
  })

  it("reads an earlier login's inline credential for the registry client", () => {
    const dir = join(root, 'with-auths')
    mkdirSync(dir)
    const auth = (s: string): string => Buffer.from(s).toString('base64')
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'ghcr.io': { auth: auth('octo:pa:ss') },
          'https://index.docker.io/v1/': { auth: auth('hub:pw') },
          'quay.io': {}
        }
      })
    )
    expect(configCredential(dir, 'ghcr.io')).toEqual({ username: 'octo', password: 'pa:ss' })
    expect(configCredential(dir, 'docker.io')).toEqual({ username: 'hub', password: 'pw' })
    expect(configCredential(dir, 'quay.io')).toBeUndefined()
    expect(configCredential(join(root, 'nothing-here'), 'ghcr.io')).toBeUndefined()
  })

  it('removes only folders it made (a bad state value cannot remove anything else)', () => {
    const other = join(root, 'precious')
    mkdirSync(other)
    expect(removeDockerConfig(other)).toBe(false)
    expect(removeDockerConfig('')).toBe(false)
    expect(removeDockerConfig(join(root, 'shipline-docker-gone'))).toBe(false)
    expect(existsSync(other)).toBe(true)
  })
})

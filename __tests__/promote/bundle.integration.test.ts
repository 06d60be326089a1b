/**
 * dist/promote/index.js run the way the runner runs it (src/testkit/runner.ts), against a real
 * docker-registry with token auth through our issuer (the ghcr.io flow). Needs `npm run build` first.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { RegistryClient } from '../../src/lib/registry/client.js'
import { REPO_ROOT, runActionBundle } from '../../src/testkit/runner.js'
import { uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { pushImage, type PushedImage } from '../registry/helpers.js'

let reg: TestRegistry
let repo = ''
let image: PushedImage

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'dist', 'promote', 'index.js')))
    throw new Error('dist/promote/index.js is missing: run npm run build')
  reg = await startRegistry({ auth: 'token', users: { 'octo-bot': `tok-${uniqueName('pw')}` } })
  repo = `acme/${uniqueName('shop')}`
  const c = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
  image = await pushImage(c, repo, 'stage')
})
afterAll(async () => {
  await reg?.stop()
})

describe('promote bundle', () => {
  it('promotes across repositories with the token flow, sets outputs and a summary, masks the password', async () => {
    const r = await runActionBundle({
      action: 'promote',
      inputs: {
        // mixed case as `${{ github.repository }}` often is: lowercased with a notice
        image: `${reg.host}/${repo.replace('acme', 'Acme')}`,
        from: 'stage',
        'to-tags': 'prod\nlive',
        'to-image': `${reg.host}/${repo}-prod`,
        'registry-username': reg.username,
        'registry-password': reg.password
      }
    })
    expect(r.stderr).toBe('')
    expect(r.exitCode).toBe(0)
    expect(r.outputs).toEqual({
      digest: image.digest,
      'source-ref': `${reg.host}/${repo}@${image.digest}`,
      'target-refs': `${reg.host}/${repo}-prod:prod\n${reg.host}/${repo}-prod:live`,
      'previous-digest': '',
      changed: 'true',
      platforms: '',
      'blob-bytes-uploaded': '0',
      'referrers-copied': '0'
    })
    expect(r.masks).toContain(reg.password)
    expect(
      r.stdout
        .split('\n')
        .filter(l => !l.startsWith('::add-mask::'))
        .join('\n')
    ).not.toContain(reg.password)
    expect(r.annotations.some(a => a.level === 'notice' && a.message.includes('lowercased'))).toBe(true)
    expect(r.summary).toContain('<table>')
    expect(r.summary).toContain(`${repo}-prod:prod`)
    expect(r.summary).toMatch(/Blobs mounted: 3, uploaded: 0/)
    // one token for source pull + target push
    const scoped = reg.tokenRequests().filter(t => t.scopes.length === 2)
    expect(scoped[0]?.scopes).toEqual([`repository:${repo}:pull`, `repository:${repo}-prod:pull,push`])
  })

  it('answers changed=false on a re-run', async () => {
    const r = await runActionBundle({
      action: 'promote',
      inputs: {
        image: `${reg.host}/${repo}`,
        from: image.digest,
        'to-tags': 'prod, live',
        'to-image': `${reg.host}/${repo}-prod`,
        'registry-username': reg.username,
        'registry-password': reg.password
      }
    })
    expect(r.exitCode).toBe(0)
    expect(r.outputs.changed).toBe('false')
    expect(r.outputs['previous-digest']).toBe(image.digest)
    expect(r.summary).toContain('nothing was written')
  })

  it('fails with one line on a wrong password, and on another registry in to-image', async () => {
    const bad = await runActionBundle({
      action: 'promote',
      inputs: {
        image: `${reg.host}/${repo}`,
        from: 'stage',
        'to-tags': 'prod',
        'registry-username': reg.username,
        'registry-password': 'nope'
      }
    })
    expect(bad.exitCode).toBe(1)
    expect(bad.annotations.filter(a => a.level === 'error').map(a => a.message)).toEqual([
      `${reg.host} refused the credentials (401) for ${reg.host}/${repo}: check registry-username and registry-password.`
    ])
    const other = await runActionBundle({
      action: 'promote',
      inputs: {
        image: `${reg.host}/${repo}`,
        from: 'stage',
        'to-tags': 'prod',
        'to-image': 'ghcr.io/acme/shop'
      }
    })
    expect(other.exitCode).toBe(1)
    expect(other.annotations.find(a => a.level === 'error')?.message).toMatch(
      /to-image.*another registry.*promote works inside one registry/
    )
  })
  it('merges images pushed by digest into one index tagged with the commit SHA (token flow)', async () => {
    const c = new RegistryClient({ registry: reg.host, username: reg.username, password: reg.password })
    const amd = await pushImage(c, `${repo}-amd64`, '', { arch: 'amd64' })
    const arm = await pushImage(c, repo, '', { arch: 'arm64' })
    const sha = 'c'.repeat(40)
    const r = await runActionBundle({
      action: 'promote',
      inputs: {
        image: `${reg.host}/${repo}`,
        merge: `${reg.host}/${repo}-amd64@${amd.digest}\n${arm.digest}`,
        sha,
        'to-tags': 'latest',
        'registry-username': reg.username,
        'registry-password': reg.password
      }
    })
    expect(r.stderr).toBe('')
    expect(r.exitCode).toBe(0)
    const index = await c.getManifest(repo, sha)
    expect(r.outputs).toEqual({
      digest: index.digest,
      'source-ref': `${reg.host}/${repo}@${index.digest}`,
      'target-refs': `${reg.host}/${repo}:${sha}\n${reg.host}/${repo}:latest`,
      'previous-digest': '',
      changed: 'true',
      platforms: 'linux/amd64\nlinux/arm64',
      'blob-bytes-uploaded': '0',
      'referrers-copied': '0'
    })
    expect((await c.getManifest(repo, amd.digest)).bytes.equals(amd.bytes)).toBe(true)
    expect(r.summary).toContain('promote: merge')
    expect(r.summary).toMatch(/Blobs mounted: 3, uploaded: 0 \(0 bytes\)/)
  })
})

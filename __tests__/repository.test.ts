/**
 * The repository as a project others can take: the license package.json names is the one in LICENSE, and
 * the security policy and changelog exist and say what a reporter and a releaser need.
 */
import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')
const read = (f: string): string => readFileSync(join(root, f), 'utf8')

describe('repository files', () => {
  it('LICENSE is the MIT license package.json declares', () => {
    const pkg = JSON.parse(read('package.json')) as { license: string }
    expect(pkg.license).toBe('MIT')
    expect(existsSync(join(root, 'LICENSE'))).toBe(true)
    expect(read('LICENSE')).toMatch(/^MIT License\n/)
    expect(read('LICENSE')).toContain('Permission is hereby granted, free of charge')
  })

  it('SECURITY.md says how to report privately', () => {
    expect(read('SECURITY.md')).toMatch(/private vulnerability reporting/i)
  })

  it('CHANGELOG.md names the version package.json carries', () => {
    const pkg = JSON.parse(read('package.json')) as { version: string }
    expect(read('CHANGELOG.md')).toContain(`## ${pkg.version}`)
  })
})

describe('one owner placeholder', () => {
  it('every README, doc and example writes OWNER/shipline, never another owner', () => {
    const files = execFileSync('git', ['ls-files', '*.md', '*.yml', '*.yaml'], {
      cwd: root,
      encoding: 'utf8'
    })
      .split('\n')
      .filter(f => f && !f.startsWith('__tests__/fixtures/') && existsSync(join(root, f)))
    const others: string[] = []
    for (const f of files) {
      for (const m of read(f).matchAll(/uses:\s*['"]?([A-Za-z0-9_.-]+)\/shipline\b/g)) {
        if (m[1] !== 'OWNER') others.push(`${f}: ${m[0]}`)
      }
    }
    expect(others).toEqual([])
  })
})

describe('runtimes', () => {
  it('engines and @types/node name the Node the bundles run on (node24); devEngines the tools (20)', () => {
    const pkg = JSON.parse(read('package.json')) as {
      engines: { node: string }
      devEngines: { runtime: { name: string; version: string } }
      devDependencies: Record<string, string>
    }
    expect(pkg.engines.node).toBe('>=24')
    expect(pkg.devDependencies['@types/node']).toMatch(/^\^24\./)
    expect(pkg.devEngines.runtime).toMatchObject({ name: 'node', version: '>=20' })
    expect(read('action.yml')).toMatch(/using: ['"]?node24/)
  })
})

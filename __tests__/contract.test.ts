/**
 * Every action.yml against ../shared/CONTRACT.md: the inputs and outputs the contract names are declared,
 * every input an action reads is declared, all use node24 with main in dist/, every entry has a description.
 */
import { describe, expect, it } from '@jest/globals'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { parse } from 'yaml'

const root = resolve(import.meta.dirname, '..')

const SSH = [
  'hosts',
  'user',
  'port',
  'ssh-key',
  'ssh-key-passphrase',
  'ssh-password',
  'known-hosts',
  'host-fingerprint',
  'insecure-accept-any-host-key',
  'proxy-jump',
  'path'
]
const REG = ['registry', 'registry-username', 'registry-password']
const DEPLOY_IN = [
  ...SSH,
  'compose-file',
  'env-file',
  'images',
  'services',
  'version',
  ...REG,
  'health-timeout',
  'auto-rollback',
  'keep-releases',
  'lock-timeout',
  'environment',
  'github-token'
]
const DEPLOY_OUT = ['release-id', 'version', 'previous-version', 'images', 'status']

/** The names fixed by the contract (copied from it; the test below also reads the file when present). */
const CONTRACT: Record<string, { dir: string; inputs: string[]; outputs: string[] }> = {
  'build-push': {
    dir: 'build-push',
    inputs: [
      'context',
      'file',
      'image',
      'service',
      'sha',
      'stage-tag',
      'tags',
      'build-args',
      'labels',
      'platforms',
      'push',
      ...REG
    ],
    outputs: ['digest', 'image', 'ref', 'tags', 'sha-tag']
  },
  promote: {
    dir: 'promote',
    inputs: ['image', 'from', 'to-tags', 'to-image', ...REG],
    outputs: ['digest', 'source-ref', 'target-refs', 'previous-digest', 'changed']
  },
  'deploy-ssh': { dir: 'deploy-ssh', inputs: DEPLOY_IN, outputs: DEPLOY_OUT },
  'smoke-test': {
    dir: 'smoke-test',
    inputs: [
      'url',
      'checks',
      'timeout',
      'request-timeout',
      'headers',
      'insecure-tls',
      'report',
      'status-context',
      'github-token'
    ],
    outputs: ['passed', 'results']
  },
  rollback: {
    dir: 'rollback',
    inputs: [...SSH, 'to', 'health-timeout', ...REG, 'environment', 'github-token'],
    outputs: ['from-version', 'to-version', 'release-id']
  },
  ship: {
    dir: '.',
    inputs: [...DEPLOY_IN, 'smoke-url', 'smoke-checks', 'smoke-timeout'],
    outputs: [...DEPLOY_OUT, 'smoke-passed']
  }
}

interface ActionYml {
  name: string
  description: string
  inputs: Record<string, { description?: string; default?: string; required?: boolean }>
  outputs: Record<string, { description?: string }>
  runs: { using: string; main: string; post?: string }
}

function load(dir: string): ActionYml {
  return parse(readFileSync(join(root, dir, 'action.yml'), 'utf8')) as ActionYml
}

/** Input names an action reads: calls of the typed readers in its main and the src/ modules it imports. */
function inputsRead(action: string): Set<string> {
  const seen = new Set<string>()
  const names = new Set<string>()
  const visit = (file: string): void => {
    if (seen.has(file) || !existsSync(file)) return
    seen.add(file)
    const src = readFileSync(file, 'utf8')
    for (const m of src.matchAll(
      /\b(?:getInput|inputs?\.(?:str|secret|bool|int|list)|\b(?:str|secret|bool|int|list))\(\s*'([a-z0-9-]+)'/g
    )) {
      names.add(m[1])
    }
    for (const m of src.matchAll(/from\s+'(\.{1,2}\/[^']+)\.js'/g))
      visit(resolve(dirname(file), m[1] + '.ts'))
  }
  visit(join(root, 'src', action, 'main.ts'))
  return names
}

describe('action.yml files follow the contract', () => {
  for (const [action, spec] of Object.entries(CONTRACT)) {
    describe(action, () => {
      const yml = load(spec.dir)
      it('runs on node24 from its dist bundle', () => {
        expect(yml.runs.using).toBe('node24')
        expect(resolve(root, spec.dir, yml.runs.main)).toBe(join(root, 'dist', action, 'index.js'))
        if (yml.runs.post)
          expect(resolve(root, spec.dir, yml.runs.post)).toBe(join(root, 'dist', action, 'index.js'))
      })
      it('declares every contract input and output', () => {
        expect(Object.keys(yml.inputs)).toEqual(expect.arrayContaining(spec.inputs))
        expect(Object.keys(yml.outputs)).toEqual(expect.arrayContaining(spec.outputs))
      })
      it('describes itself, every input and every output', () => {
        expect(yml.name).toBeTruthy()
        expect(yml.description).toBeTruthy()
        for (const [k, v] of Object.entries(yml.inputs))
          expect([k, v.description?.length ?? 0]).not.toEqual([k, 0])
        for (const [k, v] of Object.entries(yml.outputs))
          expect([k, v.description?.length ?? 0]).not.toEqual([k, 0])
      })
      it('uses kebab-case names', () => {
        for (const k of [...Object.keys(yml.inputs), ...Object.keys(yml.outputs)])
          expect(k).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/)
      })
      it('declares every input its code reads', () => {
        const read = [...inputsRead(action)]
        expect(read.filter(n => !(n in yml.inputs))).toEqual([])
      })
    })
  }

  it('agrees with ../shared/CONTRACT.md where it is present', () => {
    const file = resolve(root, '..', 'shared', 'CONTRACT.md')
    if (!existsSync(file)) return
    const text = readFileSync(file, 'utf8')
    // every `## action` section's table rows name inputs that our copy above lists
    for (const [action, spec] of Object.entries(CONTRACT)) {
      const sec = text.split(/^## /m).find(s => s.startsWith(action === 'ship' ? 'ship' : action))
      expect(sec).toBeDefined()
      for (const m of sec!.matchAll(/^\|\s*((?:`[a-z0-9-]+`(?:,\s*)?)+)\s*\|/gm)) {
        for (const n of m[1].matchAll(/`([a-z0-9-]+)`/g))
          expect([action, spec.inputs.includes(n[1])]).toEqual([action, true])
      }
    }
  })
})

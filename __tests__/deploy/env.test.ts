/** env / env-secrets planning and the keyed-hash comparison, as plain units (no host). */
import { describe, expect, it } from '@jest/globals'
import { diffEnv, envDiffLine, keyedHash, parseEnvLines, planEnv } from '../../src/lib/deploy/env.js'

describe('planEnv', () => {
  it('with env-file: the file with env and env-secrets merged in, later inputs winning', () => {
    const p = planEnv({
      envFile: '# app\nA=1\nexport B="two"\nC=3\n',
      env: 'C=30\nD=4',
      envSecrets: 'A=secret-1'
    })
    expect(p.file).toBe('# app\nexport B="two"\nC=30\nD=4\nA=secret-1\n')
    expect([...p.plain]).toEqual([
      ['C', '30'],
      ['D', '4']
    ])
    expect([...p.secret].sort()).toEqual(['A', 'B'])
    expect(p.overlay).toBeUndefined()
  })
  it('without env-file: an overlay for the host; none of the three: nothing', () => {
    const o = planEnv({ env: 'A=1', envSecrets: 'B=2' })
    expect([o.overlay, o.file]).toEqual(['A=1\nB=2\n', undefined])
    const none = planEnv({})
    expect([none.overlay, none.file]).toEqual([undefined, undefined])
    expect(planEnv({ envFile: '' }).file).toBe('')
  })
  it('refuses bad lines (naming the input and line, never the value) and a key in both', () => {
    expect(() => planEnv({ env: 'A=1\nnot a line' })).toThrow(/^Input 'env' line 2 is not KEY=value/)
    expect(() => planEnv({ envSecrets: 'PW=hunter2-xyz\n2BAD=hunter2-xyz' })).toThrow(
      /^Input 'env-secrets' line 2/
    )
    try {
      planEnv({ envSecrets: '9=hunter2-xyz' })
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2')
    }
    expect(() => planEnv({ env: 'A=1', envSecrets: 'A=2' })).toThrow(/both name A: keep each key in one/)
    expect(() => parseEnvLines('A=1\nA=2', 'env')).toThrow(/names A twice/)
  })
})

describe('diffEnv', () => {
  const salt = 's4lt'
  const live = (o: Record<string, string>): string =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${keyedHash(salt, v)}`)
      .join('\n')
  it('by key: added, changed, removed; env values shown, secrets by name only', () => {
    const p = planEnv({ envFile: 'A=1\nPW=new-pw\n', env: 'LOG=debug' })
    const d = diffEnv(p, salt, live({ A: '1', PW: 'old-pw', OLD: 'x', LOG: 'info' }))
    expect(d).toEqual({
      added: [],
      changed: ['PW', 'LOG'],
      removed: ['OLD'],
      unchanged: 1,
      shown: { LOG: 'debug' }
    })
    expect(envDiffLine(d)).toBe('~PW ~LOG=debug -OLD (1 unchanged)')
    expect(envDiffLine(d)).not.toContain('new-pw')
  })
  it('an overlay removes nothing', () => {
    const d = diffEnv(planEnv({ envSecrets: 'PW=x' }), salt, live({ A: '1' }))
    expect(d).toMatchObject({ added: ['PW'], removed: [] })
    expect(envDiffLine(diffEnv(planEnv({ env: 'A=1' }), salt, live({ A: '1' })))).toBe('no change (1 keys)')
  })
})

/** provenanceStatement alone: what it says outside a workflow run, and what it never says. */
import { describe, expect, it } from '@jest/globals'
import { BUILD_TYPE, provenanceStatement, type ProvenanceFacts } from '../../src/lib/build/provenance.js'

const facts = (over: Partial<ProvenanceFacts> = {}): ProvenanceFacts => ({
  image: 'ghcr.io/acme/app',
  digest: `sha256:${'ab'.repeat(32)}`,
  sha: 'c'.repeat(40),
  context: '.',
  file: '',
  platforms: [],
  buildArgNames: ['B', 'A'],
  builder: 'docker build (classic builder; no buildx)',
  pushByDigest: false,
  startedOn: new Date('2026-01-02T03:04:05.678Z'),
  finishedOn: new Date('2026-01-02T03:04:09.000Z'),
  env: {},
  ...over
})

describe('provenanceStatement', () => {
  it('outside a workflow run: no workflow, no invocation id, a builder id that says so, no git dependency', () => {
    const s = provenanceStatement(facts())
    expect(s.subject).toEqual([{ name: 'ghcr.io/acme/app', digest: { sha256: 'ab'.repeat(32) } }])
    expect(s.predicate.runDetails).toEqual({
      builder: { id: `${BUILD_TYPE}:outside-github-actions` },
      metadata: { startedOn: '2026-01-02T03:04:05Z', finishedOn: '2026-01-02T03:04:09Z' }
    })
    expect(s.predicate.buildDefinition.resolvedDependencies).toEqual([])
    expect(s.predicate.buildDefinition.externalParameters).toEqual({
      sha: 'c'.repeat(40),
      context: '.',
      buildArgs: ['A', 'B']
    })
  })

  it('refuses a digest that is not sha256', () => {
    expect(() => provenanceStatement(facts({ digest: 'sha512:' + 'a'.repeat(128) }))).toThrow(
      /not a sha256 digest/
    )
  })
})

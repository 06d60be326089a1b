/**
 * promote's run() in-process with a typed @actions/core fixture: input errors fail the step with one line
 * naming the input, before any registry is asked.
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as core from '../../__fixtures__/core.js'
import { useTripwire } from './no-host.js'

jest.unstable_mockModule('@actions/core', () => core)
const { run } = await import('../../src/promote/main.js')
const { runAction } = await import('../../src/action/run.js')
// what importing the main(s) did, before any test resets the fixture
const atImport = { inputs: core.getInput.mock.calls.length, failed: core.setFailed.mock.calls.length }

const registry = useTripwire()
beforeEach(() => core.resetCore())

const failWith = async (inputs: Record<string, string>): Promise<string> => {
  core.setInputs(inputs)
  await runAction(run)
  expect(core.setFailed).toHaveBeenCalledTimes(1)
  expect(core.setOutput).not.toHaveBeenCalled()
  return String(core.setFailed.mock.calls[0][0])
}

describe('promote run(): input errors', () => {
  it('importing main runs nothing', () => {
    expect(atImport).toEqual({ inputs: 0, failed: 0 })
  })

  const cases: [string, (reg: string) => Record<string, string>, RegExp][] = [
    ['no image', () => ({}), /^Input 'image' is required/],
    [
      'image with a tag',
      reg => ({ image: `${reg}/acme/app:v1` }),
      /^Input 'image' must be a repository without a tag or digest/
    ],
    [
      'image with a digest',
      reg => ({ image: `${reg}/acme/app@sha256:${'a'.repeat(64)}` }),
      /^Input 'image' must be a repository without a tag or digest/
    ],
    [
      'to-image with a tag',
      reg => ({ image: `${reg}/acme/app`, 'to-image': `${reg}/acme/app:prod` }),
      /^Input 'to-image' must be a repository without a tag or digest/
    ],
    [
      'to-image on another registry',
      reg => ({ image: `${reg}/acme/app`, 'to-image': 'other.example.com/acme/app' }),
      /^Input 'to-image' \(other\.example\.com\) is on another registry than 'registry'/
    ],
    [
      "image on another registry than 'registry'",
      reg => ({ registry: reg, image: 'elsewhere.example.com/acme/app' }),
      /^Input 'image' \(elsewhere\.example\.com\) is on another registry than 'registry'/
    ],
    [
      'merge with from',
      reg => ({ image: `${reg}/acme/app`, merge: `sha256:${'a'.repeat(64)}\nsha256:${'b'.repeat(64)}` }),
      /^Inputs 'merge' and 'from' exclude each other/
    ],
    [
      'merge with a malformed digest',
      reg => ({ image: `${reg}/acme/app`, from: '', merge: 'sha256:1234' }),
      /^merge: 'sha256:1234' is not a valid digest/
    ],
    [
      'merge with a tag',
      reg => ({ image: `${reg}/acme/app`, from: '', merge: `${reg}/acme/app:v1` }),
      /^merge: '.*acme\/app:v1' is not a digest; give one 'image@sha256:…'/
    ],
    [
      'merge on another registry',
      reg => ({
        image: `${reg}/acme/app`,
        from: '',
        merge: `other.example.com/acme/app@sha256:${'a'.repeat(64)}`
      }),
      /^merge: 'other\.example\.com\/acme\/app@sha256:a+' is on another registry/
    ],
    [
      'merge of one image',
      reg => ({ image: `${reg}/acme/app`, from: '', merge: `sha256:${'a'.repeat(64)}` }),
      /^Input 'merge' needs at least two image digests/
    ],
    [
      'merge naming one digest twice',
      reg => ({
        image: `${reg}/acme/app`,
        from: '',
        merge: `sha256:${'a'.repeat(64)}, acme/app-arm@sha256:${'a'.repeat(64)}`
      }),
      /^Input 'merge' names sha256:a+ twice \(acme\/app and acme\/app-arm\)/
    ],
    [
      'sha without merge',
      reg => ({ image: `${reg}/acme/app`, sha: 'a'.repeat(40) }),
      /^Input 'sha' tags the index 'merge' makes/
    ],
    [
      'sha that is not a full commit SHA',
      reg => ({
        image: `${reg}/acme/app`,
        from: '',
        merge: `sha256:${'a'.repeat(64)}\nsha256:${'b'.repeat(64)}`,
        sha: 'abc123'
      }),
      /^sha: 'abc123' is not a full commit SHA/
    ]
  ]
  it.each(cases)('%s', async (_name, inputs, want) => {
    const reg = `${registry().host}:${registry().port}`
    const msg = await failWith({
      from: 'v1',
      'to-tags': 'prod',
      'registry-password': 'hunter2-secret',
      ...inputs(reg)
    })
    expect(msg).toMatch(want)
    expect(registry().hits()).toBe(0)
    // the password was masked before the error (or anything else) was written
    expect(core.setSecret).toHaveBeenCalledWith('hunter2-secret')
    expect(core.setSecret.mock.invocationCallOrder[0]).toBeLessThan(
      core.setFailed.mock.invocationCallOrder[0]
    )
  })

  it('control: valid inputs do reach the registry (and a capitalised name is lowercased with a notice)', async () => {
    const reg = `${registry().host}:${registry().port}`
    core.setInputs({ image: `${reg}/Acme/App`, from: 'v1', 'to-tags': 'prod' })
    await runAction(run)
    expect(core.notice).toHaveBeenCalledWith(
      expect.stringMatching(/^image: '.*\/Acme\/App' lowercased to '.*\/acme\/app'/)
    )
    expect(registry().hits()).toBeGreaterThan(0)
    expect(core.setFailed).toHaveBeenCalledTimes(1)
  })
})

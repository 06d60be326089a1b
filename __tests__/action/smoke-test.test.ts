/**
 * smoke-test's run() in-process with a typed @actions/core fixture: input errors fail the step with one
 * line naming the input, before any request is sent; credentials are masked first.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as core from '../../__fixtures__/core.js'
import { tripwire, type Tripwire } from './no-host.js'

jest.unstable_mockModule('@actions/core', () => core)
const { run } = await import('../../src/smoke-test/main.js')
const { runAction } = await import('../../src/action/run.js')
// what importing the main(s) did, before any test resets the fixture
const atImport = { inputs: core.getInput.mock.calls.length, failed: core.setFailed.mock.calls.length }

let target: Tripwire
beforeAll(async () => {
  target = await tripwire(200)
})
afterAll(async () => {
  await target.close()
})
beforeEach(() => core.resetCore())

const failWith = async (inputs: Record<string, string>): Promise<string> => {
  core.setInputs(inputs)
  await runAction(run)
  expect(core.setFailed).toHaveBeenCalledTimes(1)
  expect(core.setOutput).not.toHaveBeenCalled()
  expect(target.hits()).toBe(0)
  return String(core.setFailed.mock.calls[0][0])
}

describe('smoke-test run(): input errors', () => {
  it('importing main runs nothing', () => {
    expect(atImport).toEqual({ inputs: 0, failed: 0 })
  })

  const url = (): string => `http://${target.host}:${target.port}`
  const cases: [string, () => Record<string, string>, RegExp][] = [
    ['no url', () => ({}), /^Input 'url' is required/],
    ['not a URL', () => ({ url: 'not a url' }), /^Input 'url' must be an http:\/\/ or https:\/\/ URL/],
    [
      'another scheme',
      () => ({ url: 'ftp://files.example.com' }),
      /^Input 'url' must start with http:\/\/ or https:\/\//
    ],
    ['timeout not a number', () => ({ url: url(), timeout: 'soon' }), /'timeout'/],
    ['timeout out of range', () => ({ url: url(), timeout: '0' }), /'timeout'/],
    ['request-timeout out of range', () => ({ url: url(), 'request-timeout': '601' }), /'request-timeout'/],
    ['insecure-tls not a boolean', () => ({ url: url(), 'insecure-tls': 'yes' }), /'insecure-tls'/],
    ['checks not YAML', () => ({ url: url(), checks: '- path: [' }), /'checks'/],
    [
      'report unknown',
      () => ({ url: url(), report: 'email' }),
      /^Input 'report' must be one of summary, status, check/
    ]
  ]
  it.each(cases)('%s', async (_name, inputs, want) => {
    expect(await failWith(inputs())).toMatch(want)
  })

  it('a URL with credentials: masked (user:password and its Basic form) before the error is written', async () => {
    const msg = await failWith({ url: 'ftp://deploy:s3cret-pass-77@files.example.com' })
    expect(msg).toMatch(/^Input 'url' must start with http/)
    const masked = core.setSecret.mock.calls.map(c => c[0])
    expect(masked).toEqual(expect.arrayContaining(['s3cret-pass-77', 'deploy:s3cret-pass-77']))
    expect(masked).toContain(Buffer.from('deploy:s3cret-pass-77').toString('base64'))
    expect(core.setSecret.mock.invocationCallOrder[0]).toBeLessThan(
      core.setFailed.mock.invocationCallOrder[0]
    )
  })

  it('header values are masked before anything is logged', async () => {
    await failWith({ url: 'ftp://x', headers: 'Authorization: Bearer tok-abc-123456' })
    expect(core.setSecret.mock.calls.map(c => c[0])).toEqual(expect.arrayContaining(['tok-abc-123456']))
  })

  it('control: valid inputs do reach the target', async () => {
    core.setInputs({ url: url(), checks: '- /health', timeout: '600' })
    await runAction(run)
    // the failure's own message first: it says why, should a run ever not reach the target
    expect(core.setFailed.mock.calls.map(c => String(c[0]))).toEqual([])
    expect(target.hits()).toBeGreaterThan(0)
    expect(core.setOutput).toHaveBeenCalledWith('passed', 'true')
    expect(core.summaryText()).toContain('/health')
  })
})

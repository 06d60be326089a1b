/**
 * rollback's and ship's run() in-process with a typed @actions/core fixture: input errors fail the step with
 * one line naming the input, before any SSH connection is opened. ship's smoke inputs are reported under
 * ship's own names (`smoke-url`, not smoke-test's `url`).
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as core from '../../__fixtures__/core.js'
import { sshInputs, useTripwire } from './no-host.js'

jest.unstable_mockModule('@actions/core', () => core)
const rollback = await import('../../src/rollback/main.js')
const ship = await import('../../src/ship/main.js')
const { runAction } = await import('../../src/action/run.js')
// what importing the main(s) did, before any test resets the fixture
const atImport = { inputs: core.getInput.mock.calls.length, failed: core.setFailed.mock.calls.length }

const host = useTripwire()
beforeEach(() => core.resetCore())

/** inputs good enough to get past every check */
const fleet = (): Record<string, string> => sshInputs(host())

const failWith = async (
  action: { run(): Promise<void>; post?: () => Promise<void> },
  inputs: Record<string, string>
): Promise<string> => {
  const before = host().hits()
  core.setInputs(inputs)
  await runAction(action.run, action.post)
  expect(core.setFailed).toHaveBeenCalledTimes(1)
  expect(core.setOutput).not.toHaveBeenCalled()
  expect(host().hits()).toBe(before)
  return String(core.setFailed.mock.calls[0][0])
}

describe('rollback run(): input errors', () => {
  it('importing the mains runs nothing', () => {
    expect(atImport).toEqual({ inputs: 0, failed: 0 })
  })

  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ['no hosts', { hosts: undefined }, /^Input 'hosts' is required/],
    ['no credentials', { 'ssh-password': undefined }, /No SSH credentials: set 'ssh-key'/],
    ['no pinned host key', { 'host-fingerprint': undefined }, /without a pinned host key/],
    [
      'insecure flag not a boolean',
      { 'insecure-accept-any-host-key': 'yes' },
      /'insecure-accept-any-host-key'/
    ],
    ['port out of range', { port: '70000' }, /'port'/],
    ['health-timeout out of range', { 'health-timeout': '0' }, /'health-timeout'/],
    ['lock-timeout not a number', { 'lock-timeout': 'long' }, /'lock-timeout'/],
    ['max-parallel out of range', { 'max-parallel': '0' }, /'max-parallel'/],
    ['unknown strategy', { strategy: 'sideways' }, /^Input 'strategy' must be 'recreate' or 'blue-green'/],
    [
      'keep-previous-warm without blue-green',
      { 'keep-previous-warm': '300' },
      /^Input 'keep-previous-warm' keeps the old blue-green slot running; set 'strategy: blue-green'/
    ],
    [
      'keep-previous-warm not a number of seconds',
      { strategy: 'blue-green', 'blue-green-ports': 'web=8001,8002', 'keep-previous-warm': '5m' },
      /'keep-previous-warm'/
    ],
    [
      'keep-previous-warm over a day',
      { strategy: 'blue-green', 'blue-green-ports': 'web=8001,8002', 'keep-previous-warm': '90000' },
      /'keep-previous-warm'/
    ]
  ]
  it.each(cases)('%s', async (_name, change, want) => {
    const inputs = { ...fleet(), ...change }
    for (const [k, v] of Object.entries(inputs)) if (v === undefined) delete inputs[k]
    expect(await failWith(rollback, inputs as Record<string, string>)).toMatch(want)
  })

  it('the SSH password and the registry password are masked before the error is written', async () => {
    await failWith(rollback, { ...fleet(), 'registry-password': 'reg-pass-4242', 'max-parallel': '0' })
    const masked = core.setSecret.mock.calls.map(c => c[0])
    expect(masked).toContain('pw-0123456789')
    // registry-password is read after the fleet group: an error there comes first and nothing logs it
    expect(core.setFailed.mock.calls[0][0]).not.toContain('reg-pass-4242')
  })

  it('control: valid inputs do open a connection to the host', async () => {
    const before = host().hits()
    core.setInputs(fleet())
    await runAction(rollback.run)
    expect(host().hits()).toBeGreaterThan(before)
    expect(core.setFailed).toHaveBeenCalledTimes(1)
  })
})

describe('ship run(): smoke input errors name ship’s inputs, before anything deploys', () => {
  it.each([
    ['no smoke-url', {}, /^Input 'smoke-url' is required: the base URL ship checks after the deploy/],
    [
      'smoke-url not a URL',
      { 'smoke-url': 'stage.example.com:8080' },
      /^Input 'smoke-url' must (be an|start with) http/
    ],
    [
      'smoke-url another scheme',
      { 'smoke-url': 'ftp://stage.example.com' },
      /^Input 'smoke-url' must start with http:\/\//
    ],
    [
      'smoke-timeout out of range',
      { 'smoke-url': 'https://stage.example.com', 'smoke-timeout': '0' },
      /'smoke-timeout'/
    ],
    [
      'smoke-checks not YAML',
      { 'smoke-url': 'https://stage.example.com', 'smoke-checks': '- path: [' },
      /'smoke-checks'/
    ]
  ] as [string, Record<string, string>, RegExp][])('%s', async (_name, smoke, want) => {
    const msg = await failWith(ship, { ...fleet(), images: 'web=nginx:1.27', ...smoke })
    expect(msg).toMatch(want)
    expect(msg).not.toMatch(/Input 'url'/)
  })

  it('a deploy input error after good smoke inputs: the SSH warning is given once, no host is touched', async () => {
    const msg = await failWith(ship, {
      ...fleet(),
      'host-fingerprint': '',
      'insecure-accept-any-host-key': 'true',
      'smoke-url': 'https://stage.example.com',
      'keep-releases': '0'
    })
    expect(msg).toMatch(/'keep-releases'/)
    const warned = core.warning.mock.calls.filter(c => /host keys are NOT verified/.test(String(c[0])))
    expect(warned).toHaveLength(1)
  })
})

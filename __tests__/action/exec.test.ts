/**
 * exec's run() in-process with the typed @actions/core fixture: input errors fail the step with one line
 * naming the input and the fix, before any SSH connection is opened (a tripwire listener counts
 * connections); secrets are masked first; a host that cannot be reached still gets its outputs and summary.
 */
import { beforeEach, describe, expect, it, jest } from '@jest/globals'
import * as core from '../../__fixtures__/core.js'
import { sshInputs, useTripwire } from './no-host.js'

jest.unstable_mockModule('@actions/core', () => core)
const exec = await import('../../src/exec/main.js')
const { runAction } = await import('../../src/action/run.js')
const atImport = { inputs: core.getInput.mock.calls.length, failed: core.setFailed.mock.calls.length }

const host = useTripwire()
beforeEach(() => core.resetCore())

/** inputs good enough to get past every check */
const good = (): Record<string, string> => ({
  ...sshInputs(host()),
  service: 'web',
  command: 'bin/rails db:migrate:status'
})

const failWith = async (inputs: Record<string, string | undefined>): Promise<string> => {
  const given = { ...good(), ...inputs }
  for (const [k, v] of Object.entries(given)) if (v === undefined) delete given[k]
  const before = host().hits()
  core.setInputs(given as Record<string, string>)
  await runAction(exec.run)
  expect(core.setFailed).toHaveBeenCalledTimes(1)
  expect(core.setOutput).not.toHaveBeenCalled()
  expect(host().hits()).toBe(before)
  const msg = String(core.setFailed.mock.calls[0][0])
  expect(msg).not.toContain('\n')
  return msg
}

describe('exec run(): input errors, before any connection', () => {
  it('importing the main runs nothing', () => {
    expect(atImport).toEqual({ inputs: 0, failed: 0 })
  })

  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ['no command', { command: undefined }, /^Input 'command' is required: the shell command to run, e\.g\./],
    ['blank command', { command: '   ' }, /^Input 'command' is required/],
    ['bad service name', { service: 'web app' }, /^Input 'service': 'web app' is not a Compose service name/],
    ['service with shell text', { service: 'web;id' }, /^Input 'service'/],
    ['timeout zero', { timeout: '0' }, /^Input 'timeout' must be between 1 and 86400, got 0\./],
    ['timeout not a number', { timeout: '5m' }, /^Input 'timeout' must be a whole number, got '5m'/],
    ['output-limit too small', { 'output-limit': '10' }, /^Input 'output-limit' must be between 1024 and/],
    ['max-parallel zero', { 'max-parallel': '0' }, /^Input 'max-parallel'/],
    [
      'fail-on-error not a boolean',
      { 'fail-on-error': 'no' },
      /^Input 'fail-on-error' must be true or false/
    ],
    ['lock not a boolean', { lock: 'yes' }, /^Input 'lock' must be true or false/],
    ['lock-timeout negative', { 'lock-timeout': '-1' }, /^Input 'lock-timeout'/],
    ['no path', { path: undefined }, /^Input 'path' is required/],
    ['relative path', { path: 'opt/app' }, /^Input 'path' must be absolute/],
    ['no hosts', { hosts: undefined }, /^Input 'hosts' is required/],
    ['no credentials', { 'ssh-password': undefined }, /No SSH credentials: set 'ssh-key'/],
    ['no pinned host key', { 'host-fingerprint': undefined }, /without a pinned host key/],
    ['port out of range', { port: '70000' }, /'port'/]
  ]
  it.each(cases)('%s', async (_name, change, want) => {
    expect(await failWith(change)).toMatch(want)
  })

  it('the SSH password and every mask line are masked before the error is written', async () => {
    await failWith({ mask: 'first-secret-1\nsecond-secret-2', timeout: '0' })
    const masked = core.setSecret.mock.calls.map(c => c[0])
    expect(masked).toEqual(expect.arrayContaining(['pw-0123456789', 'first-secret-1', 'second-secret-2']))
  })
})

describe('exec run(): a host that cannot be reached', () => {
  it('is a failed host: outputs and summary are written, then the step fails naming it', async () => {
    core.setInputs({ ...good(), timeout: '5' })
    await runAction(exec.run)
    const label = `deploy@${host().host}:${host().port}`
    expect(host().hits()).toBeGreaterThan(0)
    const outputs = Object.fromEntries(core.setOutput.mock.calls.map(([k, v]) => [k, v]))
    expect(outputs['failed-hosts']).toBe(label)
    const results = JSON.parse(String(outputs.results)) as Record<string, unknown>[]
    expect(results).toEqual([
      expect.objectContaining({ host: label, 'exit-code': null, ok: false, stdout: '', stderr: '' })
    ])
    expect(String(results[0].error)).toMatch(/^cannot connect: /)
    expect(core.summaryText()).toMatch(/^### exec: failed on 1 of 1 host\n/)
    expect(core.summaryText()).not.toContain('pw-0123456789')
    expect(core.setFailed).toHaveBeenCalledTimes(1)
    expect(String(core.setFailed.mock.calls[0][0])).toMatch(
      new RegExp(`^exec failed on 1 of 1 host\\(s\\): ${label.replace(/\./g, '\\.')} \\(cannot connect: `)
    )
  })

  it('with fail-on-error: false the step passes with a warning', async () => {
    core.setInputs({ ...good(), 'fail-on-error': 'false' })
    await runAction(exec.run)
    expect(core.setFailed).not.toHaveBeenCalled()
    expect(core.warning.mock.calls.map(c => String(c[0])).join('\n')).toMatch(
      /exec failed on 1 of 1 host\(s\): .* \(fail-on-error: false, the step passes\)/
    )
    expect(core.setOutput).toHaveBeenCalledWith('failed-hosts', `deploy@${host().host}:${host().port}`)
  })
})

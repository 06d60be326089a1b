/**
 * A typed stand-in for @actions/core (as actions/typescript-action does it): every function the actions
 * call is a jest.fn with core's own signature; the summary buffers in memory. Tests load it with
 *   jest.unstable_mockModule('@actions/core', () => core)
 * before importing an action's main, set the inputs with setInputs(), and read what the action did from
 * the mocks (setFailed, setOutput, …) and from summaryText().
 */
import type * as actionsCore from '@actions/core'
import { jest } from '@jest/globals'

let inputs: Record<string, string> = {}
let state: Record<string, string> = {}

/** The step's inputs, by their action.yml names (what the runner passes as INPUT_*). */
export function setInputs(values: Record<string, string>): void {
  inputs = { ...values }
}

export const getInput = jest.fn<typeof actionsCore.getInput>()
export const getMultilineInput = jest.fn<typeof actionsCore.getMultilineInput>()
export const getBooleanInput = jest.fn<typeof actionsCore.getBooleanInput>()
export const setSecret = jest.fn<typeof actionsCore.setSecret>()
export const setOutput = jest.fn<typeof actionsCore.setOutput>()
export const setFailed = jest.fn<typeof actionsCore.setFailed>()
export const exportVariable = jest.fn<typeof actionsCore.exportVariable>()
export const addPath = jest.fn<typeof actionsCore.addPath>()
export const isDebug = jest.fn<typeof actionsCore.isDebug>()
export const debug = jest.fn<typeof actionsCore.debug>()
export const info = jest.fn<typeof actionsCore.info>()
export const notice = jest.fn<typeof actionsCore.notice>()
export const warning = jest.fn<typeof actionsCore.warning>()
export const error = jest.fn<typeof actionsCore.error>()
export const startGroup = jest.fn<typeof actionsCore.startGroup>()
export const endGroup = jest.fn<typeof actionsCore.endGroup>()
export const group = jest.fn<typeof actionsCore.group>()
export const saveState = jest.fn<typeof actionsCore.saveState>()
export const getState = jest.fn<typeof actionsCore.getState>()

/** The part of core.summary the actions use, buffered in memory; `written` holds every write(). */
class FakeSummary {
  private buffer = ''
  written = ''
  addRaw(text: string, addEOL = false): this {
    this.buffer += text + (addEOL ? '\n' : '')
    return this
  }
  addEOL(): this {
    return this.addRaw('\n')
  }
  stringify(): string {
    return this.buffer
  }
  isEmptyBuffer(): boolean {
    return this.buffer.length === 0
  }
  emptyBuffer(): this {
    this.buffer = ''
    return this
  }
  async clear(): Promise<this> {
    this.written = ''
    return this.emptyBuffer()
  }
  async write(): Promise<this> {
    this.written += this.buffer
    return this.emptyBuffer()
  }
}

const fakeSummary = new FakeSummary()
export const summary = fakeSummary as unknown as typeof actionsCore.summary

/** Everything the action wrote to the job summary so far. */
export function summaryText(): string {
  return fakeSummary.written
}

/** Back to a fresh step: no inputs, no state, mocks cleared and given core's default behaviour. */
export function resetCore(): void {
  inputs = {}
  state = {}
  fakeSummary.written = ''
  fakeSummary.emptyBuffer()
  jest.clearAllMocks()
  // core.getInput: '' when unset, trimmed unless trimWhitespace is false, `required` throws
  getInput.mockImplementation((name, options) => {
    const value = inputs[name] ?? ''
    if (options?.required && !value) throw new Error(`Input required and not supplied: ${name}`)
    return options?.trimWhitespace === false ? value : value.trim()
  })
  getMultilineInput.mockImplementation((name, options) =>
    getInput(name, options)
      .split('\n')
      .filter(x => x !== '')
  )
  getBooleanInput.mockImplementation((name, options) => /^true$/i.test(getInput(name, options)))
  isDebug.mockReturnValue(false)
  group.mockImplementation(async (name, fn) => {
    startGroup(name)
    try {
      return await fn()
    } finally {
      endGroup()
    }
  })
  saveState.mockImplementation((name, value) => {
    state[name] = String(value)
  })
  getState.mockImplementation(name => state[name] ?? '')
}

resetCore()

/**
 * The strategy inputs as plain units: strategy, blue-green-ports, memory values and the blue-green
 * configuration checks. Blue-green itself on real parts: blue-green.integration.test.ts.
 */
import { describe, expect, it } from '@jest/globals'
import {
  checkBlueGreen,
  memoryLimit,
  parseMemory,
  parseSlotPorts,
  parseStrategy,
  type BlueGreenConfig
} from '../../src/lib/strategy/options.js'

describe('strategy inputs', () => {
  it('parses strategy, slot ports and memory values', () => {
    expect(parseStrategy('')).toBe('recreate')
    expect(parseStrategy('Blue-Green')).toBe('blue-green')
    expect(() => parseStrategy('rolling')).toThrow(/'recreate' or 'blue-green'/)
    expect([...parseSlotPorts('web=8001,8002\napi = 9001:9002')]).toEqual([
      ['web', [8001, 8002]],
      ['api', [9001, 9002]]
    ])
    expect(() => parseSlotPorts('web=8001')).toThrow(/service=<blue port>,<green port>/)
    expect(() => parseSlotPorts('web=8001,8001')).toThrow(/used twice/)
    expect(() => parseSlotPorts('web=1,2\nweb=3,4')).toThrow(/twice/)
    expect(() => parseSlotPorts('web=1,70000')).toThrow(/outside/)
    expect(parseMemory('64m')).toBe(64 * 1024 * 1024)
    expect(parseMemory('1.5G')).toBe(1.5 * 1024 ** 3)
    expect(parseMemory('512MiB')).toBe(512 * 1024 * 1024)
    expect(parseMemory(67108864)).toBe(67108864)
    expect(parseMemory('lots')).toBeUndefined()
    expect(memoryLimit({ deploy: { resources: { limits: { memory: '32M' } } } })).toBe(32 * 1024 * 1024)
    const cfg: BlueGreenConfig = {
      ports: new Map(),
      testCommand: 'nginx -t',
      reloadCommand: 'nginx -s reload',
      drainSeconds: 1,
      minFreeMiB: 1
    }
    expect(() => checkBlueGreen(cfg, ['web'])).toThrow(/blue-green-ports/)
    expect(() => checkBlueGreen({ ...cfg, ports: parseSlotPorts('api=1,2') }, ['web'])).toThrow(
      /does not update/
    )
    expect(() =>
      checkBlueGreen({ ...cfg, ports: parseSlotPorts('web=1,2'), includeDir: 'rel' }, ['web'])
    ).toThrow(/absolute/)
  })
})

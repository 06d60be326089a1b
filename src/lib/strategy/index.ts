export { BlueGreen, nginxSnippet, slotProject, upstreamFile, upstreamName } from './blue-green.js'
export type { ActivateResult, SlotHost, SlotRelease } from './blue-green.js'
export {
  BLUE_GREEN_DEFAULTS,
  checkBlueGreen,
  memoryLimit,
  parseMemory,
  parseSlotPorts,
  parseStrategy,
  type BlueGreenConfig,
  type Slot,
  type StrategyName
} from './options.js'

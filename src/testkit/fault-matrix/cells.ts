/**
 * The fault matrix's cells: the strategies, faults and remote steps, the cells of a matrix, and when a
 * link cut or a kill lands in each (triggersFor).
 */
import type { RemoteStep } from '../../lib/deploy/types.js'

export type Strategy = 'recreate' | 'blue-green'
export type Fault = 'link' | 'kill' | 'fail'
export const FAULTS: Fault[] = ['link', 'kill', 'fail']
export const FAULT_NAMES: Record<Fault, string> = {
  link: 'SSH link cut',
  kill: 'runner SIGKILL',
  fail: 'command fails'
}

export const DEPLOY_STEPS: RemoteStep[] = [
  'lock',
  'upload',
  'pull',
  // the cells' deploys run a release command (a short sleep in the new image) before `up`
  'release-command',
  'up',
  'health',
  'switch',
  'finish',
  'put-back'
]
/** rollback cells: `up` is the target's up (a library may report it as put-back: either event triggers) */
export const ROLLBACK_STEPS: RemoteStep[] = ['lock', 'pull', 'up', 'health', 'switch', 'finish']

export interface Cell {
  strategy: Strategy
  kind: 'deploy' | 'rollback'
  step: RemoteStep
  fault: Fault
}

export const cellName = (c: Cell): string =>
  `${c.kind === 'rollback' ? 'rollback ' : ''}${c.step} × ${c.fault}`

/** Every cell of a strategy's deploy matrix, or of the rollback matrix. */
export function cells(strategy: Strategy, kind: 'deploy' | 'rollback' = 'deploy'): Cell[] {
  const steps = kind === 'deploy' ? DEPLOY_STEPS : ROLLBACK_STEPS
  const faults: Fault[] = kind === 'deploy' ? FAULTS : ['link', 'kill']
  return steps.flatMap(step => faults.map(fault => ({ strategy, kind, step, fault })))
}

/**
 * When a link cut or a kill lands. `start`/`end`: the moment the library reports that phase; `delayMs`
 * after it (the health wait: "during"). Several triggers: the first that happens.
 */
export interface Trigger {
  step: RemoteStep
  phase: 'start' | 'end'
  delayMs?: number
}

export function triggersFor(c: Cell): Trigger[] {
  if (c.kind === 'rollback') {
    switch (c.step) {
      case 'up':
        return [
          { step: 'up', phase: 'end' },
          { step: 'put-back', phase: 'start', delayMs: 1500 }
        ]
      case 'health':
        // the target is healthy within ~1 s: cut as the wait begins, not later (that would be a race)
        return [{ step: 'health', phase: 'start' }]
      case 'switch':
      case 'finish':
        return [{ step: c.step, phase: 'start' }]
      default:
        return [{ step: c.step, phase: 'end' }]
    }
  }
  switch (c.step) {
    case 'release-command':
      // the command sleeps ~2 s: +0.5 s is inside it (a link cut or kill while the migration runs)
      return [{ step: 'release-command', phase: 'start', delayMs: 500 }]
    case 'health':
      // the attempted image never turns healthy (fails after ~3 s), so +1 s is inside the wait
      return [{ step: 'health', phase: 'start', delayMs: 1000 }]
    case 'switch':
    case 'finish':
    case 'put-back':
      return [{ step: c.step, phase: 'start' }]
    default:
      return [{ step: c.step, phase: 'end' }]
  }
}

export const describeTrigger = (ts: Trigger[]): string =>
  ts.map(t => `${t.step} ${t.phase}${t.delayMs ? ` +${t.delayMs / 1000}s` : ''}`).join(' or ')

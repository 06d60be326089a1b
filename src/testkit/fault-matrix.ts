/**
 * The fault matrix: for each remote step of a deploy (lock, upload, pull, up, health, switch, finish,
 * put-back) or rollback, and each fault (the SSH link cut, the runner SIGKILLed, a remote command failing
 * for a real reason), one cell: a fresh project path with a v1 baseline, the faulted run, then the host is
 * checked (checkInvariants) and one more deploy (v3) must work.
 *
 * Everything is real: the sshd fixture is the host, Docker + docker-compose v1 run the releases, a
 * docker-registry holds the images, nginx fronts blue-green. Faults:
 *  - link  a tcp-cut forwarder (tcp-cut.ts) sits between the library and sshd; cut() at the step
 *  - kill  the run happens in a child process (deploy-child.ts), SIGKILLed when it prints the step
 *  - fail  the step's command fails for a real reason on the host (a held flock, a file where the release
 *          folder goes, a digest the registry lacks, a host port taken, an image that never turns healthy,
 *          a directory where current.tmp goes, an immutable run dir, the previous release's port taken)
 *
 * The steps are seen through the library's onStep hook (Common.onStep). A cell whose trigger event never
 * arrives did not get its fault: it is reported "pending", never counted as holding.
 *
 * The parts live in fault-matrix/: cells.ts (the cells and their triggers), setup.ts (images, the compiled
 * deploy child), host.ts (reading the host's state), invariants.ts (the checker), context.ts (a cell's
 * context, jobs and compose files), faults.ts (the command-fails faults), run.ts (running cells, the
 * table). This module re-exports what the tests use.
 */
export {
  cellName,
  cells,
  DEPLOY_STEPS,
  describeTrigger,
  FAULT_NAMES,
  FAULTS,
  ROLLBACK_STEPS,
  triggersFor,
  type Cell,
  type Fault,
  type Strategy,
  type Trigger
} from './fault-matrix/cells.js'
export { compileDeployChild, prepareMatrix, type MatrixEnv, type MatrixImages } from './fault-matrix/setup.js'
export {
  currentRelease,
  lockFree,
  projectsOf,
  releaseVersion,
  serving,
  stateDir,
  waitLockFree,
  type Serve
} from './fault-matrix/host.js'
export {
  checkInvariants,
  type CheckOptions,
  type CheckReport,
  type RunResult
} from './fault-matrix/invariants.js'
export {
  failures,
  matrixTable,
  removeProjects,
  runCell,
  runPool,
  type CellOutcome
} from './fault-matrix/run.js'

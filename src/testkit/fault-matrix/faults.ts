/**
 * The fault matrix's command-fails faults: for each step, a real cause on the host that makes its command
 * fail (commandFault), and the means of causing it (a held port, an immutable current.tmp, a cell's own
 * image that can be removed from registry and host).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import type { StepEvent } from '../../lib/deploy/types.js'
import type { ChildJob } from '../deploy-child.js'
import { buildAppImage, removeRepository } from '../images.js'
import { freePort, sleep } from '../net.js'
import { composeFile, note, VERSION, type CellCtx } from './context.js'
import { lockFree, stateDir, waitLockFree } from './host.js'
import type { MatrixEnv } from './setup.js'

export interface Injection {
  /** before the run */
  setup?(): Promise<void>
  /** on every step event of the run (awaited: the library waits for it) */
  onStep?(e: StepEvent, planned?: string): Promise<void> | void
  /** after the run returned, before the check (undo what would block the host's own recovery) */
  afterRun?(): Promise<void>
  /** after the check, before the next deploy */
  afterCheck?(): Promise<void>
  /** the fault happened (for the pending verdict) */
  fired(): boolean
  job: Partial<ChildJob>
  expectStatus?: string
  allowOutage?: boolean
  note?: string
}

/**
 * Makes <state>/current.tmp a non-empty directory that cannot be removed (chattr +i), so pointing
 * `current` anywhere through it fails, even for a switch that first runs rm -rf current.tmp. Returns the undo.
 */
function blockCurrentTmp(state: string): () => void {
  const tmp = join(state, 'current.tmp')
  mkdirSync(join(tmp, 'obstacle'), { recursive: true })
  spawnSync('chattr', ['+i', tmp], { stdio: 'ignore' })
  let undone = false
  return () => {
    if (undone) return
    undone = true
    spawnSync('chattr', ['-i', tmp], { stdio: 'ignore' })
    rmSync(tmp, { recursive: true, force: true })
  }
}

export interface OwnImage {
  repo: string
  /** repo@sha256:… */
  ref: string
  /** deletes the manifest from the registry and every reference on the host */
  remove(): Promise<void>
}

/** A cell's own v1 build (its own repository and digest), so removing it touches no other cell. */
export async function ownImage(env: MatrixEnv, version: string): Promise<OwnImage> {
  const repo = `${env.repo.replace(/\/app$/, '')}/own-${randomBytes(4).toString('hex')}`
  buildAppImage({ tag: `${repo}:${version}`, version })
  execFileSync('docker', ['push', '-q', `${repo}:${version}`], { stdio: 'ignore' })
  const ref = execFileSync(
    'docker',
    ['image', 'inspect', '--format', '{{join .RepoDigests "\\n"}}', `${repo}:${version}`],
    {
      encoding: 'utf8'
    }
  )
    .split('\n')
    .find(d => d.startsWith(`${repo}@sha256:`))
  if (!ref) throw new Error(`no digest reference for ${repo}:${version}`)
  const name = repo.slice(env.registry.host.length + 1)
  return {
    repo,
    ref,
    remove: async () => {
      const r = await fetch(`${env.registry.url}/v2/${name}/manifests/${ref.split('@')[1]}`, {
        method: 'DELETE'
      })
      await r.arrayBuffer()
      if (r.status !== 202) throw new Error(`registry DELETE of the manifest answered ${r.status}`)
      removeRepository(repo)
      const left = execFileSync('docker', ['images', '-q', repo], { encoding: 'utf8' }).trim()
      if (left) throw new Error(`${repo} still has images on the host: ${left}`)
    }
  }
}

/** A port held by a plain TCP server of the test (a host port "another process" uses). */
async function holdPort(port?: number): Promise<{ port: number; server: Server }> {
  const p = port ?? (await freePort())
  const server = createServer(s => s.destroy())
  await new Promise<void>((res, rej) => {
    server.once('error', rej)
    server.listen(p, '127.0.0.1', () => res())
  })
  return { port: p, server }
}

const closeServer = (s?: Server): Promise<void> => new Promise(r => (s ? s.close(() => r()) : r()))

/** The command-fails fault of a step, with the real cause that makes it fail. */
export async function commandFault(
  ctx: CellCtx,
  base: { std: string; v1Compose: string; ownV1?: OwnImage }
): Promise<Injection> {
  const { env, cell, path } = ctx
  const s = stateDir(path)
  const { std } = base
  const deployJob = (over: Partial<ChildJob> = {}): Partial<ChildJob> => ({
    version: VERSION,
    composeFiles: [std],
    images: [`web=${env.images.v2}`],
    ...over
  })
  let fired = false
  switch (cell.step) {
    case 'lock': {
      // another holder keeps the lock; lock-timeout 2
      const holder = spawn('flock', [join(s, 'lock'), 'sleep', '600'], { stdio: 'ignore', detached: true })
      const release = async (): Promise<void> => {
        try {
          process.kill(-holder.pid!, 'SIGKILL')
        } catch {
          /* gone */
        }
        await waitLockFree(path, 10)
      }
      return {
        job: deployJob({ lockTimeout: 2 }),
        setup: async () => {
          const end = Date.now() + 10_000
          while (lockFree(path) && Date.now() < end) await sleep(50)
          fired = !lockFree(path)
        },
        afterRun: release,
        fired: () => fired,
        expectStatus: 'failed',
        note: 'another process holds the flock; lock-timeout 2'
      }
    }
    case 'upload':
      return {
        job: deployJob(),
        onStep: (e, planned) => {
          if (e.step === 'upload' && e.phase === 'start' && !fired) {
            const id = e.release ?? planned
            if (!id) return
            writeFileSync(join(s, 'releases', id), 'not a folder\n')
            fired = true
          }
        },
        fired: () => fired,
        expectStatus: 'failed',
        note: 'a regular file where releases/<id> goes'
      }
    case 'pull':
      fired = true
      return {
        job: deployJob({ images: [`web=${env.images.missing}`] }),
        fired: () => fired,
        expectStatus: 'failed',
        note: 'a digest the registry does not hold'
      }
    case 'up': {
      const held = await holdPort()
      fired = true
      return {
        job: deployJob({ composeFiles: [composeFile(ctx, 'v2-fixed-port', held.port)] }),
        afterCheck: () => closeServer(held.server),
        fired: () => fired,
        note: `the new compose file also publishes 127.0.0.1:${held.port}, which a test process holds`
      }
    }
    case 'health':
      fired = true
      return {
        job: deployJob({ images: [`web=${env.images.bad}`] }),
        fired: () => fired,
        expectStatus: 'rolled-back',
        note: 'an image whose healthcheck never passes'
      }
    case 'switch': {
      let undo: (() => void) | undefined
      return {
        job: deployJob(),
        onStep: e => {
          if (e.step === 'switch' && e.phase === 'start' && !fired) {
            undo = blockCurrentTmp(s)
            fired = true
          } else if (fired && !(e.step === 'switch' && e.phase === 'start')) undo?.()
        },
        afterRun: async () => undo?.(),
        fired: () => fired,
        note: '.shipline/current.tmp is a non-empty, immutable directory during the switch'
      }
    }
    case 'finish': {
      let frozen: string[] = []
      let timer: NodeJS.Timeout | undefined
      const thaw = (): void => {
        if (timer) clearTimeout(timer)
        for (const d of frozen) spawnSync('chattr', ['-i', d], { stdio: 'ignore' })
        frozen = []
      }
      return {
        job: deployJob(),
        onStep: e => {
          if (e.step === 'finish' && e.phase === 'start' && !fired) {
            const run = join(s, 'run')
            for (const d of readdirSync(run)) {
              const p = join(run, d)
              if (spawnSync('chattr', ['+i', p], { stdio: 'ignore' }).status === 0) frozen.push(p)
            }
            fired = frozen.length > 0
            // a transient fault: gone at finish end, or after 5 s at the latest
            timer = setTimeout(thaw, 5000)
          } else if (e.step === 'finish' && e.phase === 'end') thaw()
        },
        afterRun: async () => thaw(),
        fired: () => fired,
        note: 'the per-deploy run dir is immutable (chattr +i) during finish (until finish end, 5 s at most)'
      }
    }
    case 'put-back': {
      if (cell.strategy === 'recreate') {
        // v1's compose publishes a fixed port; v2 (never healthy) replaces it, then the port is taken
        let held: { port: number; server: Server } | undefined
        const port = Number(/127\.0\.0\.1:(\d+):8080/.exec(readFileSync(base.v1Compose, 'utf8'))?.[1])
        return {
          job: deployJob({ images: [`web=${env.images.bad}`] }),
          onStep: async e => {
            if (e.step === 'health' && e.phase === 'start' && !held) {
              try {
                held = await holdPort(port)
                fired = true
              } catch (err) {
                note(ctx, `could not take port ${port}: ${String(err)}`)
              }
            }
          },
          afterCheck: () => closeServer(held?.server),
          fired: () => fired,
          expectStatus: 'failed',
          allowOutage: true,
          note: `v2 never turns healthy and v1's fixed port ${port} is taken once v2 replaced it`
        }
      }
      // blue-green: after a health failure the put-back only removes the idle slot (the old one still
      // serves), so it is real work only after the switch failed past nginx's cut-over: current.tmp blocks
      // the switch, then v1's image (this cell's own build) is removed from the registry and the host
      let undo: (() => void) | undefined
      const v1 = base.ownV1!
      return {
        job: deployJob(),
        onStep: async e => {
          if (e.step === 'switch' && e.phase === 'start' && !undo) undo = blockCurrentTmp(s)
          if (e.step === 'put-back' && e.phase === 'start' && !fired) {
            undo?.()
            fired = await v1.remove().then(
              () => true,
              err => (note(ctx, `could not remove ${v1.ref}: ${String(err)}`), false)
            )
          }
        },
        afterRun: async () => undo?.(),
        fired: () => fired,
        // the close step makes the new pointer before nginx's cut-over: the switch fails with nginx still on
        // v1's slot, so the put-back has nothing to start and v1 keeps serving
        expectStatus: 'rolled-back',
        note: `the switch fails (current.tmp immutable) before nginx moves; v1's image is removed from registry and host`
      }
    }
    case 'release-command':
      fired = true
      return {
        job: deployJob({ releaseCommand: `web=sh -c 'echo "ERROR: relation exists" >&2; exit 3'` }),
        fired: () => fired,
        expectStatus: 'failed',
        note: 'the release command (a migration) exits 3 before anything is replaced'
      }
    default:
      // cells() makes cells of DEPLOY_STEPS only: every one has its case above
      throw new Error(`no command-fails fault for the step ${cell.step}`)
  }
}

/** Test helpers for real parts: free ports, waiting for a port or URL, child processes cleaned up. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms))

export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>(resolve => {
      const s = connect({ port, host }, () => {
        s.destroy()
        resolve(true)
      })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`)
    await sleep(100)
  }
}

export async function waitForHttp(
  url: string,
  timeoutMs = 20_000,
  accept = (s: number) => s < 500
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) })
      await r.arrayBuffer()
      if (accept(r.status)) return
      last = `status ${r.status}`
    } catch (e) {
      last = String(e)
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms: ${last}`)
    await sleep(150)
  }
}

export interface Proc {
  child: ChildProcess
  output: () => string
  stop: () => Promise<void>
}

/** Starts a long-running process in its own process group; stop() kills the whole group. */
export function startProcess(cmd: string, args: string[], opts: SpawnOptions = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts })
  let out = ''
  child.stdout?.on('data', d => (out = (out + d).slice(-200_000)))
  child.stderr?.on('data', d => (out = (out + d).slice(-200_000)))
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()))
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      try {
        process.kill(-child.pid!, 'SIGTERM')
      } catch {
        /* already gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL')
        } catch {
          /* gone */
        }
      }, 3000)
      await exited
      clearTimeout(t)
    }
  }
}

/** A name unique to this test run, for containers, images, folders and tags. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`
}

/**
 * Starts a server on `count` free loopback ports, again on new ports when one was taken meanwhile (up to
 * 5 tries): `launch` writes the config for the ports and starts the process. stop() ends it and removes
 * `dir`, which is removed too when every try fails.
 */
export async function launchOnFreePorts(
  what: string,
  dir: string,
  count: number,
  launch: (ports: number[]) => Proc
): Promise<{ ports: number[]; stop: () => Promise<void> }> {
  let last = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const ports: number[] = []
    for (let i = 0; i < count; i++) ports.push(await freePort())
    const proc = launch(ports)
    try {
      for (const p of ports) await waitForPort(p, '127.0.0.1', 10_000)
    } catch {
      last = proc.output()
      await proc.stop()
      continue
    }
    return {
      ports,
      stop: async () => {
        await proc.stop()
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
  rmSync(dir, { recursive: true, force: true })
  throw new Error(`${what} did not start: ${last}`)
}

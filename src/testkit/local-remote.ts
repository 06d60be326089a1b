/**
 * A Remote (src/lib/ssh/remote.ts) on this machine: each exec spawns the argv directly (no shell), stdin
 * fed then closed, a timeout kills the process group. For unit-level tests of the compose-host code and for
 * counting round trips; the integration tests go through the real sshd fixture instead.
 */
import { spawn } from 'node:child_process'
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import type { ExecOptions, Remote, RemoteResult } from '../lib/ssh/remote.js'

export interface LocalRemote extends Remote {
  /** every argv run so far */
  calls: string[][]
}

/** `env`: the environment of every command (default: this process's). */
export function localRemote(label = 'local', envOpts: { env?: NodeJS.ProcessEnv } = {}): LocalRemote {
  const calls: string[][] = []
  const running = new Set<number>()
  return {
    label,
    calls,
    exec(argv: string[], opts: ExecOptions = {}): Promise<RemoteResult> {
      calls.push(argv)
      return new Promise((resolve, reject) => {
        const child = spawn(argv[0], argv.slice(1), {
          cwd: opts.cwd,
          env: envOpts.env ?? process.env,
          detached: true,
          stdio: ['pipe', 'pipe', 'pipe']
        })
        if (child.pid) running.add(child.pid)
        let stdout = ''
        let stderr = ''
        child.stdout.on('data', (d: Buffer) => {
          stdout += d
          opts.onStdout?.(d.toString())
        })
        child.stderr.on('data', (d: Buffer) => {
          stderr += d
          opts.onStderr?.(d.toString())
        })
        child.stdin.on('error', () => undefined)
        child.stdin.end(opts.stdin ?? '')
        const timer = opts.timeoutMs
          ? setTimeout(() => {
              try {
                process.kill(-child.pid!, 'SIGKILL')
              } catch {
                /* gone */
              }
            }, opts.timeoutMs)
          : undefined
        child.on('error', reject)
        child.on('close', (code, signal) => {
          if (child.pid) running.delete(child.pid)
          if (timer) clearTimeout(timer)
          resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout, stderr })
        })
      })
    },
    async writeFile(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
      calls.push(['<writeFile>', path])
      const tmp = `${path}.tmp-${process.pid}`
      writeFileSync(tmp, data, { mode })
      chmodSync(tmp, mode)
      renameSync(tmp, path)
    },
    async readFile(path: string): Promise<Buffer> {
      calls.push(['<readFile>', path])
      return readFileSync(path)
    },
    async close(): Promise<void> {
      // like a dropped connection: whatever still runs loses its channel
      for (const pid of running) {
        try {
          process.kill(-pid, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
    }
  }
}

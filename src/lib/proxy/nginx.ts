/**
 * nginx: one include file per service, `<include-dir>/<service>.conf`, defining `upstream
 * shipline_<service>` with a `server 127.0.0.1:<port> weight=N;` line per slot (weight 0: `down`; a slot
 * alone: no weight). apply() runs the blue-green strategy's NGINX_SWITCH_SCRIPT: files written atomically,
 * the test command, the reload; the previous files go back when either fails. test() is its dry run.
 *
 * A reload is graceful (old workers finish their requests) but it is a reload: idle keep-alive
 * connections of the old workers are closed, which a client writing at that instant sees as a reset.
 */
import { UserError, errorMessage } from '../errors.js'
import { NGINX_SWITCH_SCRIPT } from '../strategy/scripts.js'
import { StagedAdapter, upstreamName, type AdapterHost, type Backend, type BackendState } from './types.js'

export interface NginxAdapterOptions {
  /** where `<service>.conf` lives on the host */
  includeDir: string
  /** shell command run on the host before a reload (e.g. `nginx -t`) */
  testCommand: string
  /** shell command run on the host to load the files (e.g. `nginx -s reload`) */
  reloadCommand: string
  /** bound of each remote call (default 120 s) */
  timeoutMs?: number
  /** first line of each file, after `# written by shipline` */
  comment?: string
}

/** The upstream block for a service's backends, as nginx reads it. */
export function nginxUpstream(service: string, backends: Backend[]): string {
  const live = backends.filter(b => b.weight > 0).length
  const line = (b: Backend): string =>
    `  server 127.0.0.1:${b.port}${b.weight === 0 ? ' down' : live > 1 ? ` weight=${b.weight}` : ''};\n`
  return `upstream ${upstreamName(service)} {\n${backends.map(line).join('')}}\n`
}

/** The backends of `service` in an include file nginxUpstream wrote (weight without `weight=`: 100). */
export function parseNginxUpstream(service: string, text: string): BackendState[] {
  const block = new RegExp(`upstream\\s+${upstreamName(service)}\\s*\\{([^}]*)\\}`).exec(text)?.[1] ?? ''
  const out: BackendState[] = []
  for (const m of block.matchAll(/server\s+127\.0\.0\.1:(\d+)([^;]*);/g)) {
    const down = /\bdown\b/.test(m[2])
    const w = /\bweight=(\d+)/.exec(m[2])?.[1]
    out.push({
      port: Number(m[1]),
      weight: down ? 0 : w ? Number(w) : 100,
      state: down ? 'down' : 'ready'
    })
  }
  return out
}

export class NginxAdapter extends StagedAdapter {
  readonly name = 'nginx' as const

  constructor(
    host: AdapterHost,
    readonly opts: NginxAdapterOptions
  ) {
    super(host)
    if (!/^\/[A-Za-z0-9._/@+-]*$/.test(opts.includeDir))
      throw new UserError(
        `nginx: the include directory must be an absolute path of plain characters, got '${opts.includeDir}'.`
      )
    if (!opts.testCommand.trim() || !opts.reloadCommand.trim())
      throw new UserError(`nginx: the test and reload commands must not be empty.`)
  }

  private files(): string[] {
    const head = `# written by shipline${this.opts.comment ? ` (${this.opts.comment})` : ''}\n`
    return this.stagedOrThrow().flatMap(([s, b]) => [`${s}.conf`, head + nginxUpstream(s, b)])
  }

  /** the switch script's argv for the staged files; `reload` empty: the dry run */
  private argv(reload: string): string[] {
    return [
      'sh',
      '-c',
      NGINX_SWITCH_SCRIPT,
      'sh',
      this.opts.includeDir,
      this.opts.testCommand,
      reload,
      '',
      '',
      ...this.files()
    ]
  }

  /** runs the switch script; `reload` empty: the dry run */
  private async switch(reload: string): Promise<void> {
    const argv = this.argv(reload)
    const what = reload ? 'switching nginx' : 'testing the nginx change'
    let r
    try {
      r = await this.host.remote.exec(argv, {
        timeoutMs: this.opts.timeoutMs ?? 120_000
      })
    } catch (e) {
      throw this.failed(
        `${what} did not finish (${errorMessage(e)})`,
        false,
        `Check ${this.opts.includeDir} and nginx.`
      )
    }
    if (r.code === 0) return
    const why =
      /^ERR (.*)$/m.exec(r.stdout)?.[1] ?? `exit ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''}`
    // the script puts the files back on every failure it reports; killed (no ERR line) it may not have
    const restored = /^ERR /m.test(r.stdout)
    throw this.failed(
      `${what} failed: ${why}`,
      restored,
      'Fix the nginx config (or the test/reload command) and run again.',
      (r.stdout + r.stderr).trim()
    )
  }

  async test(): Promise<void> {
    await this.switch('')
  }

  async apply(): Promise<void> {
    await this.switch(this.opts.reloadCommand)
    this.staged.clear()
  }

  switchArgv(): Promise<string[]> {
    const argv = this.argv(this.opts.reloadCommand)
    this.staged.clear()
    return Promise.resolve(argv)
  }

  async readBack(service: string): Promise<BackendState[]> {
    const file = `${this.opts.includeDir}/${service}.conf`
    const r = await this.host.remote.exec(['cat', '--', file], { timeoutMs: this.opts.timeoutMs ?? 120_000 })
    if (r.code !== 0)
      throw new UserError(
        `${this.host.label}: cannot read ${file}: ${r.stderr.trim()}. Has a switch written it yet?`
      )
    return parseNginxUpstream(service, r.stdout)
  }
}

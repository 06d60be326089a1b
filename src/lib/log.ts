/**
 * The one logger shape of the library. Every library function that logs takes a `Logger`; the action layer
 * passes one over @actions/core (src/action/log.ts), tests and the testkit pass plain objects.
 * `info` and `warning` are required; `notice`, `debug` and `group` are optional and fall back through
 * notice(), debug() and group() below (notice → info, debug → dropped, group → just runs).
 */
export interface Logger {
  info(message: string): void
  warning(message: string): void
  notice?(message: string): void
  debug?(message: string): void
  /** runs `fn` inside a collapsed log group */
  group?<T>(name: string, fn: () => Promise<T>): Promise<T>
}

/** A bare line callback: what some callers (tests, the registry client) still hand in; see lineLogger(). */
export type LogLine = (line: string) => void

/** A Logger that writes every level to one line callback (warnings prefixed `warning: `). */
function lineLogger(line: LogLine): Logger {
  return {
    info: m => line(m),
    warning: m => line(`warning: ${m}`),
    notice: m => line(m),
    debug: m => line(m)
  }
}

/** The Logger for a `log` option that may be a Logger or a bare line callback (or absent: quiet). */
export function toLogger(log: Logger | LogLine | undefined): Logger {
  if (!log) return quietLogger
  return typeof log === 'function' ? lineLogger(log) : log
}

const quietLogger: Logger = { info: () => undefined, warning: () => undefined }

/** The same logger with `prefix` in front of every line (e.g. a host label). */
export function prefixed(log: Logger, prefix: string): Logger {
  return {
    info: m => log.info(`${prefix}${m}`),
    warning: m => log.warning(`${prefix}${m}`),
    notice: m => notice(log, `${prefix}${m}`),
    debug: m => debug(log, `${prefix}${m}`),
    group: (name, fn) => group(log, `${prefix}${name}`, fn)
  }
}

/** Every line through `map` first (e.g. a redactor) before it reaches `log`. */
export function mapped(log: Logger, map: (line: string) => string): Logger {
  return {
    info: m => log.info(map(m)),
    warning: m => log.warning(map(m)),
    notice: m => notice(log, map(m)),
    debug: m => debug(log, map(m)),
    group: (name, fn) => group(log, map(name), fn)
  }
}

export function notice(log: Logger, message: string): void {
  if (log.notice) log.notice(message)
  else log.info(message)
}

export function debug(log: Logger, message: string): void {
  log.debug?.(message)
}

export function group<T>(log: Logger, name: string, fn: () => Promise<T>): Promise<T> {
  return log.group ? log.group(name, fn) : fn()
}

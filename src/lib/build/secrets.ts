/**
 * What a build may use beyond its context, as docker/build-push-action names it: build secrets
 * (`secrets`, `secret-envs`, `secret-files`), SSH agent sockets or keys (`ssh`), extra named contexts
 * (`build-contexts`) and cache sources and targets (`cache-from`, `cache-to`). Parsed and checked here,
 * before anything is built; no value of a secret ever appears in an error message.
 */
import { existsSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import { UserError } from '../errors.js'
import { parseList } from '../parse.js'

/**
 * One build secret, as the builder gets it: its value in memory (from `secrets`, handed over through an
 * environment variable of the builder only), an environment variable of the step (`secret-envs`), or a
 * file (`secret-files`).
 */
export type BuildSecret = { id: string; value: string } | { id: string; env: string } | { id: string; src: string }

/** BuildKit secret ids go into `--secret id=<id>,…`: no commas, no `=`, no spaces. */
const SECRET_ID = /^[A-Za-z0-9_.-]+$/

const lines = (raw: string): string[] => parseList(raw, { commas: false })

function splitLine(input: string, line: string, n: number, form: string, showLine: boolean): [string, string] {
  const i = line.indexOf('=')
  const shown = showLine ? `'${line}'` : `${n} (not shown: it may hold a secret)`
  if (i <= 0) throw new UserError(`Input '${input}': line ${shown} is not of the form ${form}. Write one ${form} per line.`)
  const id = line.slice(0, i).trim()
  if (!SECRET_ID.test(id)) {
    throw new UserError(
      `Input '${input}': id '${id}' on line ${n} is not a valid secret id. Use letters, digits, '_', '.' and '-' (the id you mount with RUN --mount=type=secret,id=…).`
    )
  }
  return [id, line.slice(i + 1).trim()]
}

export interface ParsedSecrets {
  secrets: BuildSecret[]
  /** lines for core.warning: secrets skipped because their value is empty */
  warnings: string[]
}

/**
 * The three secret inputs: `secrets` (`id=value`), `secret-envs` (`id=ENVVAR`, read from `env`) and
 * `secret-files` (`id=path`, relative to `cwd`). An empty value (a secret this run does not get, as on
 * a fork's pull request) is skipped with a warning: the build then has no such secret. A variable that is
 * not set at all, a file that does not exist, or an id given twice are errors.
 */
export function parseBuildSecrets(
  raw: { secrets: string; secretEnvs: string; secretFiles: string },
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd()
): ParsedSecrets {
  const out: BuildSecret[] = []
  const warnings: string[] = []
  const seen = new Map<string, string>()
  const add = (input: string, s: BuildSecret): void => {
    const other = seen.get(s.id)
    if (other) {
      throw new UserError(`Input '${input}': secret id '${s.id}' is also given in '${other}'. Give each secret id once.`)
    }
    seen.set(s.id, input)
    out.push(s)
  }
  const skip = (input: string, id: string, why: string): void => {
    warnings.push(
      `Input '${input}': secret '${id}' is empty (${why}), so the build gets no secret '${id}'. Pass a value, or mount it without required=true.`
    )
  }
  lines(raw.secrets).forEach((line, i) => {
    const [id, value] = splitLine('secrets', line, i + 1, 'id=value', false)
    if (value === '') skip('secrets', id, 'a secret this run cannot read, e.g. on a pull request from a fork?')
    else add('secrets', { id, value })
  })
  lines(raw.secretEnvs).forEach((line, i) => {
    const [id, name] = splitLine('secret-envs', line, i + 1, 'id=ENVVAR', true)
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new UserError(`Input 'secret-envs': '${name}' (secret '${id}') is not an environment variable name. Write id=ENVVAR.`)
    }
    const value = env[name]
    if (value === undefined) {
      throw new UserError(
        `Input 'secret-envs': environment variable ${name} (secret '${id}') is not set. Set it in the step's 'env:', e.g. ${name}: \${{ secrets.${name} }}.`
      )
    }
    if (value === '') skip('secret-envs', id, `${name} is empty`)
    else add('secret-envs', { id, env: name })
  })
  lines(raw.secretFiles).forEach((line, i) => {
    const [id, path] = splitLine('secret-files', line, i + 1, 'id=path', true)
    const src = resolve(cwd, path)
    if (!path || !existsSync(src) || !statSync(src).isFile()) {
      throw new UserError(
        `Input 'secret-files': '${path}' (secret '${id}') is not a file. Write the secret to that file in an earlier step, or fix the path.`
      )
    }
    add('secret-files', { id, src })
  })
  return { secrets: out, warnings }
}

/**
 * `ssh`: `default` (the agent at SSH_AUTH_SOCK), `<id>` likewise under another id, or `<id>=<path>[,<path>]`
 * (an agent socket or unencrypted private key files). Returns the `--ssh` values.
 */
export function parseSsh(raw: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string[] {
  return lines(raw).map(line => {
    const i = line.indexOf('=')
    const id = (i < 0 ? line : line.slice(0, i)).trim()
    if (!SECRET_ID.test(id)) {
      throw new UserError(`Input 'ssh': '${line}' is not 'default' or id=path. Write 'default' (the agent of SSH_AUTH_SOCK) or id=/path/to/key.`)
    }
    if (i < 0) {
      if (!env.SSH_AUTH_SOCK) {
        throw new UserError(
          `Input 'ssh': '${id}' forwards the SSH agent but SSH_AUTH_SOCK is not set. Start an agent in an earlier step (webfactory/ssh-agent) or write ${id}=/path/to/key.`
        )
      }
      return id
    }
    const paths = line
      .slice(i + 1)
      .split(',')
      .map(p => p.trim())
    for (const p of paths) {
      if (!p || !existsSync(resolve(cwd, p))) {
        throw new UserError(`Input 'ssh': '${p}' (id '${id}') does not exist. Give the path of an SSH agent socket or a private key file.`)
      }
    }
    return `${id}=${paths.map(p => resolve(cwd, p)).join(',')}`
  })
}

/** `build-contexts`: `name=path` or `name=docker-image://…`, `name=https://…`, … (buildx only). */
export function parseBuildContexts(raw: string): Map<string, string> {
  const out = new Map<string, string>()
  lines(raw).forEach(line => {
    const i = line.indexOf('=')
    const name = i > 0 ? line.slice(0, i).trim() : ''
    const value = i > 0 ? line.slice(i + 1).trim() : ''
    if (!name || !value || /[\s,]/.test(name)) {
      throw new UserError(`Input 'build-contexts': '${line}' is not of the form name=path or name=docker-image://image. Write one per line.`)
    }
    out.set(name, value)
  })
  return out
}

/**
 * `cache-from` / `cache-to`: one cache per line, as docker writes it (`type=registry,ref=…`, `type=gha`,
 * `type=local,src=…`, or a bare image reference for `cache-from`). Only the form is checked here; the
 * builder checks the attributes.
 */
export function parseCacheLines(input: 'cache-from' | 'cache-to', raw: string): string[] {
  return lines(raw).map(line => {
    if (!line.includes('=')) {
      if (input === 'cache-to' || /[\s,]/.test(line)) {
        throw new UserError(`Input '${input}': '${line}' is not of the form type=…,key=value. Write e.g. type=registry,ref=ghcr.io/o/app:cache.`)
      }
      return line
    }
    const parts = line.split(',').map(p => p.trim())
    if (parts.some(p => p.indexOf('=') <= 0)) {
      throw new UserError(`Input '${input}': '${line}' is not a list of key=value pairs. Write e.g. type=registry,ref=ghcr.io/o/app:cache.`)
    }
    if (!parts.some(p => p.startsWith('type='))) {
      throw new UserError(`Input '${input}': '${line}' names no type. Start it with type=registry, type=gha, type=local, …`)
    }
    return parts.join(',')
  })
}

/**
 * The `cache-from` entries the classic `docker build` can use: image references (`type=registry,ref=X`
 * or a bare `X`, passed as `--cache-from X`). Any other type is an error naming the input.
 */
export function classicCacheFrom(entries: string[]): string[] {
  return entries.map(e => {
    if (!e.includes('=')) return e
    const attrs = new Map(e.split(',').map(p => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const))
    const ref = attrs.get('ref')
    if (attrs.get('type') === 'registry' && ref && attrs.size === 2) return ref
    throw new UserError(
      `Input 'cache-from': '${e}' needs buildx; the classic docker build takes image references only (type=registry,ref=…). Add docker/setup-buildx-action before this step.`
    )
  })
}

/**
 * Build argument names that look like they carry a secret: `*TOKEN*` as a word (`NPM_TOKEN`),
 * `*PASSWORD*`, `*PASSWD*`, `*SECRET*`, `*CREDENTIAL*`, and the key names that are secrets
 * (`*API_KEY`, `*PRIVATE_KEY`, `*ACCESS_KEY`, `*SECRET_KEY`, `*SIGNING_KEY`, `*AUTH_KEY`). A bare `*_KEY`
 * is not (CACHE_KEY, SORT_KEY, …).
 */
export function secretLikeBuildArgs(names: Iterable<string>): string[] {
  const looks = (n: string): boolean =>
    /(^|_)TOKEN(S)?($|_)|PASSWORD|PASSWD|SECRET|CREDENTIAL|(^|_)(API|PRIVATE|ACCESS|SIGNING|AUTH)_?KEY($|_)/i.test(n)
  return [...names].filter(looks)
}

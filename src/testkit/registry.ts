/**
 * Real registries for tests: the distribution v2 `docker-registry` binary (Debian's 2.8) on a free port of
 * 127.0.0.1, filesystem storage in a temp dir, access log + debug log kept in memory so tests can assert
 * which requests reached it (blob uploads vs mounts, manifest PUTs).
 *
 * auth:
 * - 'none'      no authentication
 * - 'htpasswd'  Basic auth against a bcrypt htpasswd file (`htpasswd -Bin`, password over stdin)
 * - 'token'     the ghcr.io / Docker Hub flow: the registry answers `401 Bearer realm=…,service=…,scope=…`
 *               and verifies RS256 JWTs issued by a token issuer started here (a node http server) that
 *               checks Basic credentials and grants the requested pull/push scopes to known users. The
 *               signing key's self-signed certificate (`openssl req -x509`) is the registry's
 *               `rootcertbundle`; the JWT header names it by `kid`, the libtrust key ID distribution 2.x
 *               looks the key up by (SHA-256 of the DER public key, first 240 bits, base32, in groups of 4).
 *
 * Loopback registries are insecure-allowed by dockerd, so `docker push 127.0.0.1:<port>/…` works over http.
 */
import { createHash, createPublicKey, randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startProcess, waitForHttp, waitForPort, type Proc } from './net.js'

export type RegistryAuth = 'none' | 'htpasswd' | 'token'

export interface RegistryOptions {
  auth?: RegistryAuth
  /** user → password; default: one user `shipline` with a random password */
  users?: Record<string, string>
  /**
   * token auth only: user → repository (or '*') → the actions granted there. Default: pull and push on
   * every repository for known users. Lets tests model a token without push rights (ghcr's 403).
   */
  grants?: Record<string, Record<string, string[]>>
  /** token auth only: anonymous clients get pull tokens (default false: nothing for anonymous) */
  anonymousPull?: boolean
  /** registry log level (default debug: each request, upload and mount is visible) */
  logLevel?: 'info' | 'debug'
}

export interface TokenRequest {
  user?: string
  service?: string
  scopes: string[]
  status: number
}

export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  host: string
  /** `http://127.0.0.1:<port>` */
  url: string
  /** the first user (empty for auth 'none') */
  username: string
  password: string
  users: Record<string, string>
  auth: RegistryAuth
  /** everything the registry printed so far (access log lines and its structured log) */
  logs(): string
  /** the access-log request lines seen so far, e.g. `PUT /v2/team/app/manifests/prod 201` */
  requests(): { method: string; path: string; status: number }[]
  /** token auth: the token issuer's URL and the token requests it answered */
  tokenUrl?: string
  tokenRequests(): TokenRequest[]
  /** the registry's storage directory */
  dataDir: string
  stop(): Promise<void>
}

const REGISTRY_BIN = '/usr/bin/docker-registry'

/** The libtrust key ID distribution 2.x uses to find a token's signing key (JWT header `kid`). */
export function libtrustKeyId(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })
  const sum = createHash('sha256').update(der).digest().subarray(0, 30)
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of sum) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  return out.match(/.{4}/g)!.join(':')
}

/**
 * The token issuer runs as a child process of its own (not in the test's event loop), so a test may block
 * on `execFileSync('docker', ['push', …])` while dockerd asks it for tokens. Requests go to a JSONL file.
 */
const ISSUER_SCRIPT = `
import { createServer } from 'node:http'
import { createPrivateKey, randomBytes, sign } from 'node:crypto'
import { appendFileSync, readFileSync } from 'node:fs'
const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const key = createPrivateKey(readFileSync(cfg.keyFile, 'utf8'))
const b64url = b => Buffer.from(b).toString('base64url')

const grantFor = (user, repo, asked) => {
  if (!user) return asked.filter(a => a === 'pull' && cfg.anonymousPull)
  const rule = (cfg.grants[user] || {})[repo] ?? (cfg.grants[user] || {})['*']
  const allowed = rule ?? ['pull', 'push']
  return asked.filter(a => allowed.includes(a))
}
createServer((req, res) => {
  const url = new URL(req.url || '/', 'http://x')
  const scopes = url.searchParams.getAll('scope').flatMap(s => s.split(' ')).filter(Boolean)
  const service = url.searchParams.get('service') || undefined
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  let user
  const authz = req.headers.authorization || ''
  if (authz.startsWith('Basic ')) {
    const raw = Buffer.from(authz.slice(6), 'base64').toString('utf8')
    const i = raw.indexOf(':')
    const u = raw.slice(0, i), p = raw.slice(i + 1)
    if (!(u in cfg.users) || cfg.users[u] !== p) {
      appendFileSync(cfg.logFile, JSON.stringify({ user: u, service, scopes, status: 401 }) + '\\n')
      res.setHeader('www-authenticate', 'Basic realm="' + cfg.issuer + '"')
      return reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] })
    }
    user = u
  }
  appendFileSync(cfg.logFile, JSON.stringify({ user, service, scopes, status: 200 }) + '\\n')
  const access = []
  for (const scope of scopes) {
    const m = /^repository:(.+):([a-z*,]+)$/.exec(scope)
    if (!m) continue
    const actions = grantFor(user, m[1], m[2].split(','))
    if (actions.length) access.push({ type: 'repository', name: m[1], actions })
  }
  const now = Math.floor(Date.now() / 1000)
  const header = { typ: 'JWT', alg: 'RS256', kid: cfg.kid }
  const claims = { iss: cfg.issuer, sub: user || '', aud: cfg.service, exp: now + 300, nbf: now - 10, iat: now,
    jti: randomBytes(8).toString('hex'), access }
  const input = b64url(JSON.stringify(header)) + '.' + b64url(JSON.stringify(claims))
  const token = input + '.' + b64url(sign('sha256', Buffer.from(input), key))
  reply(200, { token, access_token: token, expires_in: 300, issued_at: new Date(now * 1000).toISOString() })
}).listen(cfg.port, '127.0.0.1')
`

interface Issuer {
  proc: Proc
  url: string
  logFile: string
}

async function startTokenIssuer(
  dir: string,
  users: Record<string, string>,
  service: string,
  issuer: string,
  grants: RegistryOptions['grants'],
  anonymousPull: boolean
): Promise<Issuer> {
  const certPem = readFileSync(join(dir, 'token.crt'), 'utf8')
  const kid = libtrustKeyId(createPublicKey(certPem).export({ type: 'spki', format: 'pem' }).toString())
  const port = await freePort()
  const logFile = join(dir, 'token-requests.jsonl')
  writeFileSync(logFile, '')
  const cfg = {
    keyFile: join(dir, 'token.key'),
    kid,
    users,
    service,
    issuer,
    grants: grants ?? {},
    anonymousPull,
    port,
    logFile
  }
  writeFileSync(join(dir, 'issuer.json'), JSON.stringify(cfg), { mode: 0o600 })
  writeFileSync(join(dir, 'issuer.mjs'), ISSUER_SCRIPT)
  const proc = startProcess(process.execPath, [join(dir, 'issuer.mjs'), join(dir, 'issuer.json')])
  try {
    await waitForPort(port)
  } catch (e) {
    await proc.stop()
    throw new Error(`token issuer did not start: ${e}\n${proc.output()}`)
  }
  return { proc, url: `http://127.0.0.1:${port}/token`, logFile }
}

function htpasswdLine(user: string, password: string): string {
  // -i reads the password from stdin: it never appears on a command line
  return execFileSync('htpasswd', ['-Bin', user], { input: password + '\n', encoding: 'utf8' }).trim()
}

/** Starts a real registry (and its token issuer for auth 'token'); stop() removes everything. */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none'
  const users = opts.users ?? (auth === 'none' ? {} : { shipline: `pw-${randomBytes(12).toString('hex')}` })
  const [username = '', password = ''] = Object.entries(users)[0] ?? []
  const dir = mkdtempSync(join(tmpdir(), 'shipline-registry-'))
  const dataDir = join(dir, 'data')
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const service = `shipline-registry-${port}`
  const issuerName = 'shipline-test-token-issuer'
  let issuer: Issuer | undefined

  let authYaml = ''
  if (auth === 'htpasswd') {
    writeFileSync(
      join(dir, 'htpasswd'),
      Object.entries(users)
        .map(([u, p]) => htpasswdLine(u, p))
        .join('\n') + '\n',
      {
        mode: 0o600
      }
    )
    authYaml = `auth:\n  htpasswd:\n    realm: shipline-test\n    path: ${join(dir, 'htpasswd')}\n`
  } else if (auth === 'token') {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'token.key'),
        '-out',
        join(dir, 'token.crt'),
        '-days',
        '3',
        '-subj',
        '/CN=shipline-test-token-issuer'
      ],
      { stdio: 'ignore' }
    )
    issuer = await startTokenIssuer(dir, users, service, issuerName, opts.grants, opts.anonymousPull ?? false)
    authYaml =
      `auth:\n  token:\n    realm: ${issuer.url}\n    service: ${service}\n    issuer: ${issuerName}\n` +
      `    rootcertbundle: ${join(dir, 'token.crt')}\n`
  }

  const config =
    `version: 0.1\n` +
    `log:\n  level: ${opts.logLevel ?? 'debug'}\n  formatter: text\n  accesslog:\n    disabled: false\n` +
    `storage:\n  filesystem:\n    rootdirectory: ${dataDir}\n  delete:\n    enabled: true\n` +
    `  maintenance:\n    uploadpurging:\n      enabled: false\n` +
    `http:\n  addr: ${host}\n  secret: ${randomBytes(16).toString('hex')}\n` +
    authYaml
  writeFileSync(join(dir, 'config.yml'), config)

  // The log goes to a file, not a pipe: a test that blocks its event loop (execFileSync) cannot stall the
  // registry on a full pipe.
  const logFile = join(dir, 'registry.log')
  const logFd = openSync(logFile, 'a')
  let proc: Proc | undefined
  const readLog = (): string => {
    try {
      return readFileSync(logFile, 'utf8')
    } catch {
      return ''
    }
  }
  const cleanup = async (): Promise<void> => {
    await proc?.stop()
    await issuer?.proc.stop()
    try {
      closeSync(logFd)
    } catch {
      /* closed */
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    proc = startProcess(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', logFd, logFd] })
    await waitForHttp(`http://${host}/v2/`, 20_000, s => s === 200 || s === 401)
  } catch (e) {
    const out = readLog()
    await cleanup()
    throw new Error(`docker-registry did not start on ${host}: ${e}\n${out.slice(-2000)}`)
  }
  const tokenRequests = (): TokenRequest[] => {
    if (!issuer) return []
    try {
      return readFileSync(issuer.logFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l) as TokenRequest)
    } catch {
      return []
    }
  }
  return {
    host,
    url: `http://${host}`,
    username,
    password,
    users,
    auth,
    dataDir,
    logs: readLog,
    requests: () => parseAccessLog(readLog()),
    tokenUrl: issuer?.url,
    tokenRequests,
    stop: cleanup
  }
}

/** The request lines of the registry's (combined format) access log. */
export function parseAccessLog(text: string): { method: string; path: string; status: number }[] {
  const out: { method: string; path: string; status: number }[] = []
  for (const m of text.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) /g)) {
    out.push({ method: m[1], path: m[2], status: Number(m[3]) })
  }
  return out
}

/** Runs `docker login` into a DOCKER_CONFIG folder of its own (password over stdin) and returns that folder. */
export function dockerLogin(reg: Pick<TestRegistry, 'host' | 'username' | 'password'>): {
  config: string
  remove(): void
} {
  const config = mkdtempSync(join(tmpdir(), 'shipline-docker-config-'))
  try {
    execFileSync(
      'docker',
      ['--config', config, 'login', reg.host, '--username', reg.username, '--password-stdin'],
      {
        input: reg.password,
        stdio: ['pipe', 'pipe', 'pipe']
      }
    )
  } catch (e) {
    rmSync(config, { recursive: true, force: true })
    throw e
  }
  return { config, remove: () => rmSync(config, { recursive: true, force: true }) }
}

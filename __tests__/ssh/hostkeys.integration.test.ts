/**
 * Host-key verification and login errors against real OpenSSH servers: known_hosts in all its forms
 * (made by OpenSSH's own tools where it has one), fingerprint pins, refusals that happen before any
 * credential is sent (or before any connection at all), and clear errors for the usual mistakes.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectSsh, preflight, type SshOptions } from '../../src/lib/ssh/client.js'
import { isUserError } from '../../src/lib/errors.js'
import { parseTarget } from '../../src/lib/ssh/hosts.js'
import { freePort } from '../../src/testkit/net.js'
import { fingerprintOf, generateClientKey, startSshd, type Sshd } from '../../src/testkit/sshd.js'

let a: Sshd
let b: Sshd
let tmp: string

beforeAll(async () => {
  ;[a, b] = await Promise.all([startSshd(), startSshd()])
  tmp = mkdtempSync(join(tmpdir(), 'shipline-kh-'))
})

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()])
  rmSync(tmp, { recursive: true, force: true })
})

const target = (s: Sshd) => ({ host: s.host, port: s.port, user: s.user })

async function roundTrip(s: Sshd, opts: Partial<SshOptions>): Promise<string> {
  const r = await connectSsh({ target: target(s), privateKey: s.clientKey.privateKey, ...opts })
  try {
    return (await r.exec(['echo', 'hi'])).stdout
  } finally {
    await r.close()
  }
}

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (e) {
    expect(isUserError(e)).toBe(true)
    return e as Error
  }
  throw new Error('expected a refusal')
}

const keyPart = (s: Sshd) => s.hostKeyPublic.split(/\s+/).slice(0, 2).join(' ')

describe('known-hosts', () => {
  test('a plain [host]:port line, as ssh-keyscan prints it', async () => {
    const scanned = execFileSync('ssh-keyscan', ['-p', String(a.port), '-t', 'ed25519', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'ignore']
    }).toString()
    expect(await roundTrip(a, { knownHosts: scanned })).toBe('hi\n')
  })

  test('hashed entries made by ssh-keygen -H', async () => {
    const f = join(tmp, 'hashed')
    writeFileSync(f, `# comment\n\n${b.knownHostsLine}\n${a.knownHostsLine}\n`)
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' })
    const text = readFileSync(f, 'utf8')
    expect(text).toMatch(/^\|1\|/m)
    expect(text).not.toContain('127.0.0.1')
    expect(await roundTrip(a, { knownHosts: text })).toBe('hi\n')
  })

  test('patterns: comma lists, wildcards, negation; a bare host entry does not cover another port', async () => {
    const ok = `other.example,[127.0.0.*]:${a.port} ${keyPart(a)}`
    expect(await roundTrip(a, { knownHosts: ok })).toBe('hi\n')
    const negated = `[127.0.0.*]:${a.port},![127.0.0.1]:${a.port} ${keyPart(a)}`
    expect((await failure(roundTrip(a, { knownHosts: negated }))).message).toMatch(
      /No host key for \[127\.0\.0\.1\]:\d+/
    )
    const barePort22 = `127.0.0.1 ${keyPart(a)}`
    expect((await failure(roundTrip(a, { knownHosts: barePort22 }))).message).toMatch(
      /ssh-keyscan -p \d+ 127\.0\.0\.1/
    )
  })

  test('@revoked rejects the key even when a plain line accepts it', async () => {
    const text = `${a.knownHostsLine}\n@revoked * ${keyPart(a)}\n`
    const e = await failure(roundTrip(a, { knownHosts: text }))
    expect(e.message).toMatch(/@revoked/)
    expect(e.message).toContain(a.hostFingerprint)
  })

  test('@cert-authority lines alone do not vouch for a plain host key', async () => {
    const e = await failure(roundTrip(a, { knownHosts: `@cert-authority * ${keyPart(b)}` }))
    expect(e.message).toMatch(/only through @cert-authority, and host certificates are not supported/)
  })

  test('unreadable known-hosts text is a clear error', async () => {
    const e = await failure(roundTrip(a, { knownHosts: 'this is not a known_hosts line' }))
    expect(e.message).toMatch(/known-hosts.*ssh-keyscan/)
  })
})

describe('servers with several host keys, and IPv6', () => {
  test('the key type known_hosts lists for the host is the one negotiated (as OpenSSH does)', async () => {
    const s = await startSshd({ extraHostKeyTypes: ['rsa', 'ecdsa'], ipv6: true })
    try {
      expect(s.hostKeys.map(k => k.type)).toEqual(['ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256'])
      for (const k of s.hostKeys) {
        const line = `[127.0.0.1]:${s.port} ${k.line.split(' ').slice(0, 2).join(' ')}`
        expect(await roundTrip(s, { knownHosts: line })).toBe('hi\n')
      }
      // a pin carries no type: the server's preferred key must match it, and the error says which was seen
      const rsa = s.hostKeys[1].fingerprint
      const e = await failure(roundTrip(s, { fingerprints: [rsa] }))
      expect(e.message).toContain(`presented ssh-ed25519 ${s.hostFingerprint}`)
      // IPv6: [::1]:port in host lines and known_hosts
      const t6 = parseTarget(`[::1]:${s.port}`, { user: 'root', port: 22 })
      const r = await connectSsh({
        target: t6,
        privateKey: s.clientKey.privateKey,
        knownHosts: `[::1]:${s.port} ${keyPart(s)}`
      })
      expect((await r.exec(['sh', '-c', 'echo "$SSH_CONNECTION"'])).stdout).toMatch(
        new RegExp(`^::1 \\d+ ::1 ${s.port}\\n$`)
      )
      expect(r.label).toBe(`root@[::1]:${s.port}`)
      await r.close()
    } finally {
      await s.stop()
    }
  })
})

describe('fingerprint pins', () => {
  test('a SHA256 pin (as ssh-keygen -lf prints it) is enough; with a host pattern too', async () => {
    const printed = execFileSync('ssh-keygen', ['-lf', join(a.dir, 'host_ed25519.pub')])
      .toString()
      .split(/\s+/)[1]
    expect(printed).toBe(a.hostFingerprint)
    expect(await roundTrip(a, { fingerprints: [printed] })).toBe('hi\n')
    expect(await roundTrip(a, { fingerprints: [`127.0.0.1 ${printed}=`] })).toBe('hi\n')
  })

  test('a malformed pin is refused before connecting', () => {
    expect(() =>
      preflight({ privateKey: a.clientKey.privateKey, fingerprints: ['MD5:aa:bb'] }, [target(a)])
    ).toThrow(/host-fingerprint.*SHA256/)
  })
})

describe('refusals', () => {
  test('a wrong host key is refused before authentication: no credentials reach the server', async () => {
    const before = a.log().length
    const e = await failure(roundTrip(a, { knownHosts: `[127.0.0.1]:${a.port} ${keyPart(b)}` }))
    expect(e.message).toContain('HOST KEY MISMATCH')
    expect(e.message).toContain(`[127.0.0.1]:${a.port}`)
    expect(e.message).toContain(a.hostFingerprint)
    expect(e.message).toContain(b.hostFingerprint)
    await waitForLog(a, before, /Connection (closed|reset)|Disconnected|preauth/)
    const log = a.log().slice(before)
    expect(log).toMatch(/Connection from 127\.0\.0\.1/)
    expect(log).not.toMatch(/publickey|password|Accepted|Failed|Invalid user|for root/i)
    expect(log).not.toContain(fingerprintOf(a.clientKey.publicKey))
  })

  test('a wrong pin is refused the same way', async () => {
    const e = await failure(roundTrip(a, { fingerprints: [b.hostFingerprint] }))
    expect(e.message).toMatch(/HOST KEY MISMATCH .* presented ssh-ed25519 SHA256:/)
  })

  test('no host key at all: refused before connecting, with how to get one', async () => {
    const before = a.log().length
    const e = await failure(roundTrip(a, {}))
    expect(e.message).toContain(`ssh-keyscan -p ${a.port} 127.0.0.1`)
    expect(e.message).toMatch(/known-hosts.*host-fingerprint.*insecure-accept-any-host-key/)
    // prove the server saw nothing: a later real login is the next thing in its log
    await roundTrip(a, { knownHosts: a.knownHostsLine })
    const log = a.log().slice(before)
    expect(log.match(/Connection from/g)).toHaveLength(1)
  })

  test('insecure-accept-any-host-key connects and returns a loud warning', async () => {
    const { warnings } = preflight({ privateKey: a.clientKey.privateKey, insecureAcceptAnyHostKey: true }, [
      target(a)
    ])
    expect(warnings.join()).toMatch(/NOT verified/)
    expect(await roundTrip(a, { insecureAcceptAnyHostKey: true })).toBe('hi\n')
    // but a key that contradicts a given known-hosts line is still refused
    const e = await failure(
      roundTrip(a, { insecureAcceptAnyHostKey: true, knownHosts: `[127.0.0.1]:${a.port} ${keyPart(b)}` })
    )
    expect(e.message).toContain('HOST KEY MISMATCH')
  })
})

describe('login errors', () => {
  test('an unauthorized key says where to add it', async () => {
    const other = generateClientKey()
    const e = await failure(roundTrip(a, { knownHosts: a.knownHostsLine, privateKey: other.privateKey }))
    expect(e.message).toMatch(
      /SSH login as root@127\.0\.0\.1:\d+ was refused .* add the public key of 'ssh-key' to ~root\/\.ssh\/authorized_keys on 127\.0\.0\.1/
    )
  })

  test('an encrypted OpenSSH key needs its passphrase; a wrong one is named', async () => {
    const pass = 'correct horse ' + Math.random()
    const enc = generateClientKey(pass)
    const s = await startSshd({ authorizedKeys: [enc.publicKey] })
    try {
      const opts = { knownHosts: s.knownHostsLine, privateKey: enc.privateKey }
      expect(await roundTrip(s, { ...opts, passphrase: pass })).toBe('hi\n')
      expect((await failure(roundTrip(s, opts))).message).toMatch(/encrypted: set 'ssh-key-passphrase'/)
      expect((await failure(roundTrip(s, { ...opts, passphrase: 'wrong' }))).message).toMatch(
        /could not be decrypted/
      )
    } finally {
      await s.stop()
    }
  })

  test('a PEM RSA key (encrypted, traditional format) with CRLF line ends works', async () => {
    const pass = 'pem-pass-' + Math.random()
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'pkcs1', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase: pass }
    })
    const pubFile = join(tmp, 'rsa.pem.pub')
    writeFileSync(pubFile, publicKey)
    const sshPub = execFileSync('ssh-keygen', ['-i', '-m', 'PEM', '-f', pubFile]).toString().trim()
    const s = await startSshd({ authorizedKeys: [sshPub] })
    try {
      const crlf = privateKey.replace(/\n/g, '\r\n')
      expect(await roundTrip(s, { knownHosts: s.knownHostsLine, privateKey: crlf, passphrase: pass })).toBe(
        'hi\n'
      )
    } finally {
      await s.stop()
    }
  })

  test('an ed25519 key whose public part starts with a zero byte (1 key in 256) logs in', async () => {
    const key = ed25519WithLeadingZero()
    // OpenSSH itself reads the key we built and derives the same public key
    const f = join(tmp, 'zero-key')
    writeFileSync(f, key.privateKey, { mode: 0o600 })
    expect(execFileSync('ssh-keygen', ['-y', '-f', f]).toString().split(' ').slice(0, 2)).toEqual(
      key.publicKey.split(' ').slice(0, 2)
    )
    const s = await startSshd({ authorizedKeys: [key.publicKey] })
    try {
      expect(await roundTrip(s, { knownHosts: s.knownHostsLine, privateKey: key.privateKey })).toBe('hi\n')
    } finally {
      await s.stop()
    }
  })

  test('garbage in ssh-key is refused before connecting', () => {
    expect(() => preflight({ privateKey: 'not a key', knownHosts: a.knownHostsLine }, [target(a)])).toThrow(
      /BEGIN and END lines/
    )
    expect(() => preflight({ knownHosts: a.knownHostsLine }, [target(a)])).toThrow(/No SSH credentials/)
  })

  test('nothing listening: connection refused names host and port', async () => {
    const port = await freePort()
    const e = await failure(
      connectSsh({
        target: { host: '127.0.0.1', port, user: 'root' },
        privateKey: a.clientKey.privateKey,
        insecureAcceptAnyHostKey: true
      })
    )
    expect(e.message).toBe(
      `Nothing listens for SSH on 127.0.0.1:${port} (connection refused): check the host and 'port', and that sshd runs there.`
    )
  })

  test('a port that never speaks SSH: handshake timeout', async () => {
    const silent: Server = createServer(() => undefined)
    await new Promise<void>(r => silent.listen(0, '127.0.0.1', () => r()))
    const port = (silent.address() as { port: number }).port
    try {
      const e = await failure(
        connectSsh({
          target: { host: '127.0.0.1', port, user: 'root' },
          privateKey: a.clientKey.privateKey,
          insecureAcceptAnyHostKey: true,
          readyTimeoutMs: 800
        })
      )
      expect(e.message).toMatch(/No SSH handshake with 127\.0\.0\.1:\d+ within 1 s: a firewall/)
    } finally {
      silent.close()
    }
  })
})

async function waitForLog(s: Sshd, from: number, re: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !re.test(s.log().slice(from)); i++) await new Promise(r => setTimeout(r, 50))
}

/** An unencrypted OpenSSH ed25519 key whose 32-byte public key starts with 0x00, built from Node's keygen. */
function ed25519WithLeadingZero(): { privateKey: string; publicKey: string } {
  for (;;) {
    const { privateKey } = generateKeyPairSync('ed25519')
    const jwk = privateKey.export({ format: 'jwk' })
    const pub = Buffer.from(jwk.x!, 'base64url')
    if (pub[0] !== 0) continue
    const seed = Buffer.from(jwk.d!, 'base64url')
    const u32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255])
    const str = (b: Buffer | string) => Buffer.concat([u32(Buffer.byteLength(b)), Buffer.from(b)])
    const blob = Buffer.concat([str('ssh-ed25519'), str(pub)])
    let priv = Buffer.concat([
      u32(0x5eed),
      u32(0x5eed),
      str('ssh-ed25519'),
      str(pub),
      str(Buffer.concat([seed, pub])),
      str('zero')
    ])
    for (let i = 1; priv.length % 8; i++) priv = Buffer.concat([priv, Buffer.from([i])])
    const body = Buffer.concat([
      Buffer.from('openssh-key-v1\0'),
      str('none'),
      str('none'),
      str(''),
      u32(1),
      str(blob),
      str(priv)
    ])
    const b64 = body.toString('base64').replace(/.{70}/g, '$&\n')
    return {
      privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
      publicKey: `ssh-ed25519 ${blob.toString('base64')} zero`
    }
  }
}

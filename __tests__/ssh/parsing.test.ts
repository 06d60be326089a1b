/**
 * Host lines, known_hosts matching and the SSH inputs of the actions, without a server: what is refused
 * before anything connects.
 */
import { afterEach, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readSshInputs } from '../../src/action/ssh-inputs.js'
import { commandLine, normalizeKey } from '../../src/lib/ssh/client.js'
import { formatTarget, parseTarget, parseTargets } from '../../src/lib/ssh/hosts.js'
import { HostKeyChecker, entryMatches, parseKnownHosts } from '../../src/lib/ssh/known-hosts.js'
import { generateClientKey } from '../../src/testkit/sshd.js'

const D = { user: 'root', port: 22 }

describe('host lines', () => {
  test.each([
    ['app1.example.com', { user: 'root', host: 'app1.example.com', port: 22 }],
    ['deploy@10.0.0.5', { user: 'deploy', host: '10.0.0.5', port: 22 }],
    ['deploy@10.0.0.5:2222', { user: 'deploy', host: '10.0.0.5', port: 2222 }],
    ['[::1]:2222', { user: 'root', host: '::1', port: 2222 }],
    ['ops@[2001:db8::7]', { user: 'ops', host: '2001:db8::7', port: 22 }],
    ['2001:db8::7', { user: 'root', host: '2001:db8::7', port: 22 }],
    [' web_2 ', { user: 'root', host: 'web_2', port: 22 }]
  ])('%s', (line, want) => {
    expect(parseTarget(line, D)).toEqual(want)
  })

  test.each([
    ['-oProxyCommand=touch x', /not name a valid host/],
    ['host;rm -rf /', /not name a valid host/],
    ['$(id)@host', /not a valid SSH user name/],
    ['-l@host', /not a valid SSH user name/],
    ['a b', /not name a valid host/],
    ['host:0', /port '0'/],
    ['host:99999', /port '99999'/],
    ['host:22x', /port '22x'/],
    ['[::1', /unclosed/],
    ['`x`', /not name a valid host/],
    ['host\nother', /not name a valid host/]
  ])('refuses %j', (line, re) => {
    expect(() => parseTarget(line, D)).toThrow(re)
  })

  test('duplicates are refused; labels are user@host:port with IPv6 in brackets', () => {
    expect(() => parseTargets(['a', 'root@a:22'], D)).toThrow(/names root@a:22 twice/)
    expect(formatTarget(parseTarget('[::1]:2', D))).toBe('root@[::1]:2')
  })
})

describe('known_hosts matching', () => {
  const kp = () => generateClientKey().publicKey.split(' ').slice(0, 2).join(' ')

  test('hashed entries for port 22 and other ports (hashed by ssh-keygen -H)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shipline-kh-'))
    try {
      const key = kp()
      writeFileSync(join(dir, 'kh'), `app.example.com ${key}\n[10.1.2.3]:2222 ${key}\n`)
      execFileSync('ssh-keygen', ['-H', '-f', join(dir, 'kh')], { stdio: 'ignore' })
      const entries = parseKnownHosts(readFileSync(join(dir, 'kh'), 'utf8'))
      expect(entries).toHaveLength(2)
      expect(entries.every(e => e.hashed)).toBe(true)
      expect(entryMatches(entries[0], 'app.example.com', 22)).toBe(true)
      expect(entryMatches(entries[0], 'APP.example.com', 22)).toBe(true)
      expect(entryMatches(entries[0], 'app.example.com', 2222)).toBe(false)
      expect(entryMatches(entries[1], '10.1.2.3', 2222)).toBe(true)
      expect(entryMatches(entries[1], '10.1.2.3', 22)).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('patterns and markers', () => {
    const key = kp()
    const [plain, wild, neg] = parseKnownHosts(
      `a.example.com,b.example.com ${key}\n*.example.org ${key}\n*.example.net,!bad.example.net ${key}\n@unknown x ${key}\nbroken line\n`
    )
    expect(entryMatches(plain, 'b.example.com', 22)).toBe(true)
    expect(entryMatches(wild, 'x.y.example.org', 22)).toBe(true)
    expect(entryMatches(wild, 'example.org', 22)).toBe(false)
    expect(entryMatches(neg, 'ok.example.net', 22)).toBe(true)
    expect(entryMatches(neg, 'bad.example.net', 22)).toBe(false)
    expect(parseKnownHosts(`@cert-authority *.example.com ${key}`)[0].marker).toBe('cert-authority')
  })

  test('a policy without an entry for a host names the host and the ssh-keyscan command', () => {
    const c = new HostKeyChecker({ knownHosts: `a.example.com ${kp()}` })
    expect(() => c.requirePolicy('a.example.com', 22)).not.toThrow()
    expect(() => c.requirePolicy('b.example.com', 22)).toThrow(
      "add the line that 'ssh-keyscan b.example.com' prints"
    )
    expect(() => new HostKeyChecker({}).requirePolicy('h', 2200)).toThrow(
      /Refusing to connect to \[h\]:2200 .*ssh-keyscan -p 2200 h/
    )
  })
})

describe('commands and keys', () => {
  test('the command word is always quoted; cwd is quoted', () => {
    expect(commandLine(['A=b', 'c'])).toBe("'A=b' c")
    expect(commandLine(['if'])).toBe("'if'")
    expect(commandLine(['ls', '-l'], "/opt/a b'c")).toBe(`cd -- '/opt/a b'\\''c' && 'ls' -l`)
    expect(() => commandLine([])).toThrow()
  })

  test('pasted keys: CRLF and one-line "\\n" forms are repaired', () => {
    const k = generateClientKey().privateKey
    expect(normalizeKey(k.replace(/\n/g, '\r\n'))).toBe(k.trim() + '\n')
    expect(normalizeKey(k.trim().replace(/\n/g, '\\n'))).toBe(k.trim() + '\n')
  })
})

describe('SSH inputs of the actions', () => {
  const saved = { ...process.env }
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('INPUT_')) delete process.env[k]
    Object.assign(process.env, saved)
  })
  const set = (inputs: Record<string, string>) => {
    for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.toUpperCase()}`] = v
  }

  test('reads hosts, defaults, credentials, pins and the bastion', () => {
    const key = generateClientKey()
    const fp = 'SHA256:' + 'A'.repeat(43)
    set({
      hosts: 'app1\ndeploy@app2:2200\n',
      user: 'ops',
      port: '2222',
      'ssh-key': key.privateKey,
      'host-fingerprint': fp,
      'proxy-jump': 'jump.example.com',
      'insecure-accept-any-host-key': 'false'
    })
    const r = readSshInputs()
    expect(r.targets).toEqual([
      { user: 'ops', host: 'app1', port: 2222 },
      { user: 'deploy', host: 'app2', port: 2200 }
    ])
    expect(r.options.proxyJump).toEqual({ user: 'ops', host: 'jump.example.com', port: 22 })
    expect(r.options.fingerprints).toEqual([fp])
    expect(r.options.privateKey).toBe(key.privateKey)
    expect(r.warnings).toEqual([])
  })

  test('no host key: refused with the fix; insecure: a warning', () => {
    set({ hosts: 'app1', 'ssh-key': generateClientKey().privateKey })
    expect(() => readSshInputs()).toThrow(/Refusing to connect to app1 without a pinned host key/)
    set({ 'insecure-accept-any-host-key': 'TRUE' })
    expect(readSshInputs().warnings[0]).toMatch(/host keys are NOT verified/)
  })

  test('hosts is required; a bad boolean names the input', () => {
    set({ 'ssh-key': 'x' })
    expect(() => readSshInputs()).toThrow(/Input 'hosts' is required/)
    set({ hosts: 'a', 'insecure-accept-any-host-key': 'yes' })
    expect(() => readSshInputs()).toThrow(/insecure-accept-any-host-key/)
  })
})

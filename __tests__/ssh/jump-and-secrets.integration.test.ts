/**
 * proxy-jump through a real bastion sshd (one bastion connection shared by several hosts), password
 * login, and secrets that never show up in any process's argv on either side while the transport works.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import { connectHosts, connectSsh, type SshOptions } from '../../src/lib/ssh/client.js'
import { isUserError } from '../../src/lib/errors.js'
import { uniqueName } from '../../src/testkit/net.js'
import { generateClientKey, randomPassword, startSshd, type Sshd } from '../../src/testkit/sshd.js'

const passphrase = `pp-${randomPassword()}`
const key = generateClientKey(passphrase)
const password = randomPassword()
let bastion: Sshd
let app1: Sshd
let app2: Sshd
let pw: Sshd

beforeAll(async () => {
  ;[bastion, app1, app2, pw] = await Promise.all([
    startSshd({ authorizedKeys: [key.publicKey] }),
    startSshd({ authorizedKeys: [key.publicKey] }),
    startSshd({ authorizedKeys: [key.publicKey] }),
    startSshd({ password })
  ])
})

afterAll(async () => {
  await Promise.all([bastion, app1, app2, pw].map(s => s?.stop()))
})

const t = (s: Sshd) => ({ host: s.host, port: s.port, user: s.user })
const common = (): SshOptions => ({
  privateKey: key.privateKey,
  passphrase,
  knownHosts: [bastion, app1, app2].map(s => s.knownHostsLine).join('\n'),
  proxyJump: t(bastion)
})

describe('proxy-jump', () => {
  test('hosts reached through one shared bastion connection', async () => {
    const remotes = await connectHosts([t(app1), t(app2)], common())
    try {
      const out = await Promise.all(remotes.map(r => r.exec(['sh', '-c', 'echo "$SSH_CONNECTION"'])))
      // the app hosts see the bastion (sshd's forward) as their client, connecting to their own port
      expect(out[0].stdout).toMatch(new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${app1.port}\\n$`))
      expect(out[1].stdout).toMatch(new RegExp(` ${app2.port}\\n$`))
      expect(remotes.map(r => r.label)).toEqual([
        `root@127.0.0.1:${app1.port}`,
        `root@127.0.0.1:${app2.port}`
      ])
    } finally {
      await Promise.all(remotes.map(r => r.close()))
    }
    expect(bastion.logLines(/Accepted publickey/)).toHaveLength(1)
    expect(app1.logLines(/Accepted publickey/)).toHaveLength(1)
    expect(app2.logLines(/Accepted publickey/)).toHaveLength(1)
  })

  test('the target behind the bastion gets its host key checked too', async () => {
    const opts = common()
    opts.knownHosts = [
      bastion.knownHostsLine,
      `[127.0.0.1]:${app1.port} ${app2.hostKeyPublic.split(' ').slice(0, 2).join(' ')}`
    ].join('\n')
    const e = await connectSsh({ target: t(app1), ...opts }).catch(err => err)
    expect(isUserError(e)).toBe(true)
    expect(String(e.message)).toContain(`HOST KEY MISMATCH for [127.0.0.1]:${app1.port}`)
  })

  test('a bastion without a pinned host key is refused before connecting', async () => {
    const opts = common()
    opts.knownHosts = app1.knownHostsLine
    await expect(connectSsh({ target: t(app1), ...opts })).rejects.toThrow(
      `No host key for [127.0.0.1]:${bastion.port}`
    )
  })

  test('a target the bastion cannot reach: the error says so', async () => {
    const opts = common()
    opts.knownHosts += `\n[127.0.0.1]:1 ${app1.hostKeyPublic.split(' ').slice(0, 2).join(' ')}`
    await expect(
      connectSsh({ target: { host: '127.0.0.1', port: 1, user: 'root' }, ...opts })
    ).rejects.toThrow(/bastion could not open a connection to 127\.0\.0\.1:1/)
  })
})

describe('several hosts', () => {
  test('all or nothing: one host refused closes the others', async () => {
    const wrong = `[127.0.0.1]:${app2.port} ${app1.hostKeyPublic.split(' ').slice(0, 2).join(' ')}`
    const opts = { privateKey: key.privateKey, passphrase, knownHosts: `${app1.knownHostsLine}\n${wrong}` }
    const closedBefore = app1.logLines(/Disconnected from user root/).length
    await expect(connectHosts([t(app1), t(app2)], opts)).rejects.toThrow(
      `HOST KEY MISMATCH for [127.0.0.1]:${app2.port}`
    )
    for (let i = 0; i < 100 && app1.logLines(/Disconnected from user root/).length === closedBefore; i++) {
      await new Promise(r => setTimeout(r, 50))
    }
    expect(app1.logLines(/Disconnected from user root/).length).toBe(closedBefore + 1)
  })
})

describe('password login', () => {
  test('password auth for a user with a password', async () => {
    const r = await connectSsh({
      target: { host: pw.host, port: pw.port, user: pw.passwordUser! },
      password,
      knownHosts: pw.knownHostsLine
    })
    try {
      expect((await r.exec(['id', '-un'])).stdout).toBe(`${pw.passwordUser}\n`)
    } finally {
      await r.close()
    }
    const e = await connectSsh({
      target: { host: pw.host, port: pw.port, user: pw.passwordUser! },
      password: 'wrong-' + password,
      knownHosts: pw.knownHostsLine
    }).catch(err => err)
    expect(String(e.message)).toMatch(/refused for ssh-password: check 'ssh-password'/)
  })
})

/** Every process's argv on this machine (both ends of the SSH connection live here). */
function allArgv(): string[] {
  const out: string[] = []
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      out.push(readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' '))
    } catch {
      /* gone */
    }
  }
  return out
}

describe('secrets', () => {
  test('key, passphrase, password and secret file contents never appear in any argv', async () => {
    const envSecret = `DB_PASSWORD=${randomPassword()}`
    const keyBody = key.privateKey.split('\n')[2]
    const needles = [keyBody, passphrase, password, envSecret, Buffer.from(password).toString('base64')]
    const canary = uniqueName('argv-canary')
    let canarySeen = false
    const leaks: string[] = []
    let polls = 0
    let running = true
    const poller = (async () => {
      while (running) {
        for (const a of allArgv()) {
          for (const n of needles) if (a.includes(n)) leaks.push(`${n.slice(0, 6)}… in ${a.slice(0, 80)}`)
          if (a.includes(canary)) canarySeen = true
        }
        polls++
        await new Promise(r => setImmediate(r))
      }
    })()
    try {
      const dir = `/tmp/${uniqueName('shipline-secret')}`
      const [r] = await connectHosts([t(app1)], common())
      const p = await connectSsh({
        target: { host: pw.host, port: pw.port, user: pw.passwordUser! },
        password,
        knownHosts: pw.knownHostsLine
      })
      await r.exec(['mkdir', '-p', dir])
      for (let i = 0; i < 5; i++) {
        await r.writeFile(`${dir}/.env`, envSecret + '\n', 0o600)
        await r.exec(['sh', '-c', 'cat >/dev/null; sleep 0.05'], { stdin: envSecret })
        expect((await r.readFile(`${dir}/.env`)).toString()).toBe(envSecret + '\n')
        await p.exec(['sh', '-c', 'read x; sleep 0.05'], { stdin: password + '\n' })
      }
      await r.exec(['rm', '-rf', dir])
      // control: an argument that IS on a command line is seen by the poller
      await r.exec(['sh', '-c', 'sleep 0.5', canary])
      await Promise.all([r.close(), p.close()])
    } finally {
      running = false
      await poller
    }
    expect(polls).toBeGreaterThan(10)
    expect(canarySeen).toBe(true)
    expect(leaks).toEqual([])
  })
})

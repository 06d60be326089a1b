/**
 * The SSH transport against a real OpenSSH server (src/testkit/sshd.ts): byte-exact argv, stdin, exit
 * codes, atomic writes with modes, reads, timeouts that leave nothing behind on the host, one connection
 * reused for every command.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { connectSsh, RemoteTimeoutError, type SshRemote } from '../../src/lib/ssh/client.js'
import { randomPassword, startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { uniqueName } from '../../src/testkit/net.js'

let sshd: Sshd
let remote: SshRemote
/** the same host with files sent through `sh` instead of SFTP (the path taken when a host has no SFTP) */
let viaSh: SshRemote
const dir = `/tmp/${uniqueName('shipline-ssh-t')}`

beforeAll(async () => {
  // `password` also creates the fixture's plain user (shell /bin/sh, no rc files: commands finish fast,
  // where root's bash reads whatever ~/.bashrc the machine has); root logins are covered further down
  // and in the other files
  sshd = await startSshd({ password: randomPassword() })
  remote = await connectSsh({
    target: { host: sshd.host, port: sshd.port, user: sshd.passwordUser! },
    privateKey: sshd.clientKey.privateKey,
    knownHosts: sshd.knownHostsLine
  })
  viaSh = await connectSsh({
    target: { host: sshd.host, port: sshd.port, user: sshd.passwordUser! },
    privateKey: sshd.clientKey.privateKey,
    knownHosts: sshd.knownHostsLine,
    fileTransfer: 'exec'
  })
  await remote.exec(['mkdir', '-p', dir])
})

afterAll(async () => {
  await remote?.exec(['rm', '-rf', dir]).catch(() => undefined)
  await remote?.close()
  await viaSh?.close()
  await sshd?.stop()
})

describe('exec', () => {
  test('awkward arguments arrive byte-exact', async () => {
    const args = [
      '',
      "it's",
      '"double"',
      '$(touch /tmp/pwned-shipline)',
      '`id`',
      'a;b && c || d | e & f',
      'line1\nline2\n',
      '  spaces  ',
      '*',
      '~root',
      '-n',
      '--',
      'ünïcødé ✓ 日本',
      '\\back\\slash',
      '$HOME ${PATH}',
      '!bang',
      'tab\there',
      '#hash',
      'A=b',
      "'''"
    ]
    const r = await remote.exec(['printf', '%s\\0', ...args])
    expect(r.code).toBe(0)
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(args)
    const check = await remote.exec(['test', '-e', '/tmp/pwned-shipline'])
    expect(check.code).toBe(1)
  })

  test('exit codes, stderr and stdin', async () => {
    expect((await remote.exec(['sh', '-c', 'exit 7'])).code).toBe(7)
    expect((await remote.exec(['true'])).code).toBe(0)
    expect((await remote.exec(['no-such-command-shipline'])).code).toBe(127)
    const e = await remote.exec(['sh', '-c', 'echo out; echo err >&2'])
    expect(e).toEqual({ code: 0, stdout: 'out\n', stderr: 'err\n' })
    const data = 'secret=1\n' + 'x'.repeat(300_000) + '\nünï\n'
    const r = await remote.exec(['sha256sum'], { stdin: data })
    const local = execFileSync('sha256sum', [], { input: data }).toString()
    expect(r.stdout).toBe(local)
    // no stdin: the command sees EOF at once instead of hanging
    expect((await remote.exec(['cat'])).stdout).toBe('')
  })

  test('cwd is quoted and honoured; streamed output', async () => {
    const odd = `${dir}/with space 'q'`
    await remote.exec(['mkdir', '-p', odd])
    const chunks: string[] = []
    const r = await remote.exec(['pwd'], { cwd: odd, onStdout: c => chunks.push(c) })
    expect(r.stdout).toBe(odd + '\n')
    expect(chunks.join('')).toBe(odd + '\n')
    expect((await remote.exec(['pwd'], { cwd: `${dir}/missing` })).code).not.toBe(0)
  })

  test('many commands in parallel beyond the server session limit share one connection', async () => {
    const rs = await Promise.all(Array.from({ length: 25 }, (_, i) => remote.exec(['sh', '-c', `echo ${i}`])))
    expect(rs.map(r => r.stdout.trim())).toEqual(Array.from({ length: 25 }, (_, i) => String(i)))
  })
})

describe('sftp session', () => {
  test('opened once per connection and kept through bursts of commands', async () => {
    await remote.writeFile(`${dir}/burst`, 'a')
    for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 30 }, () => remote.exec(['true'])))
    const commands = () => sshd.logLines(/Starting session: command/).length
    const before = commands()
    await remote.writeFile(`${dir}/burst`, 'b')
    expect((await remote.readFile(`${dir}/burst`)).toString()).toBe('b')
    // still over SFTP: no shell was started for the write or the read, and SFTP was opened only once
    expect(commands()).toBe(before)
    expect(sshd.logLines(/Starting session: subsystem 'sftp'/)).toHaveLength(1)
  })
})

describe.each(['sftp', 'sh'])('files over %s', mode => {
  const r = () => (mode === 'sftp' ? remote : viaSh)
  test('writeFile is atomic with its mode; readFile returns the bytes', async () => {
    const p = `${dir}/.env-${mode}`
    const bytes = Buffer.from([0, 1, 2, 255, 10, 13, 0x27, 0x22])
    await r().writeFile(p, bytes, 0o600)
    expect(Buffer.compare(await r().readFile(p), bytes)).toBe(0)
    expect((await r().exec(['stat', '-c', '%a', p])).stdout.trim()).toBe('600')
    await r().writeFile(p, 'second\n', 0o640)
    expect((await r().readFile(p)).toString()).toBe('second\n')
    expect((await r().exec(['stat', '-c', '%a', p])).stdout.trim()).toBe('640')
    // no temp files left behind
    expect(
      (await r().exec(['ls', '-A', dir])).stdout.split('\n').filter(l => l.includes('shipline-'))
    ).toEqual([])
    await expect(r().readFile(`${dir}/nope`)).rejects.toThrow(/Could not read .*nope/)
    await expect(r().writeFile(`${dir}/no/such/dir/f`, 'x')).rejects.toThrow(/Could not write/)
  })

  test('a 0600 file is never readable by others while it is written', async () => {
    // the temp file gets its mode before content lands: watch the folder while a large file is written
    const p = `${dir}/big.secret`
    const done = `${dir}/done-${mode}`
    const watcher = r().exec(
      [
        'sh',
        '-c',
        'end=$(($(date +%s)+20)); while [ $(date +%s) -lt $end ]; do for f in "$1"/.big.secret.*; do [ -e "$f" ] && stat -c %a "$f"; done; [ -e "$2" ] && exit 0; done',
        'sh',
        dir,
        done
      ],
      { timeoutMs: 30_000 }
    )
    await r().writeFile(p, 'k'.repeat(8 * 1024 * 1024), 0o600)
    await r().exec(['touch', done])
    const seen = new Set((await watcher).stdout.split('\n').filter(Boolean))
    for (const m of seen) expect(m).toBe('600')
    expect((await r().exec(['stat', '-c', '%a %s', p])).stdout.trim()).toBe(`600 ${8 * 1024 * 1024}`)
  })
})

describe('fast commands', () => {
  test('exit status and output of commands that finish at once are never lost', async () => {
    // the whole reply (confirmation, output, exit status, close) can come in one read from the socket
    const plain = await connectSsh({
      target: { host: sshd.host, port: sshd.port, user: sshd.passwordUser! },
      privateKey: sshd.clientKey.privateKey,
      knownHosts: sshd.knownHostsLine
    })
    try {
      for (let i = 0; i < 30; i++)
        expect(await plain.exec(['sh', '-c', `echo ${i}; exit ${i % 4}`])).toEqual({
          code: i % 4,
          stdout: `${i}\n`,
          stderr: ''
        })
      const rs = await Promise.all(
        Array.from({ length: 30 }, (_, i) => plain.exec(['sh', '-c', `exit ${i % 5}`]))
      )
      expect(rs.map(r => r.code)).toEqual(Array.from({ length: 30 }, (_, i) => i % 5))
    } finally {
      await plain.close()
    }
  })
})

describe('background processes', () => {
  test('a command that leaves a process in the background holding its output does not hang the step', async () => {
    const r = await connectSsh({
      target: { host: sshd.host, port: sshd.port, user: sshd.passwordUser! },
      privateKey: sshd.clientKey.privateKey,
      knownHosts: sshd.knownHostsLine,
      exitGraceMs: 300
    })
    let pid = 0
    try {
      const res = await r.exec(['sh', '-c', 'sleep 120 & echo $!; echo done; exit 4'])
      pid = Number(res.stdout.split('\n')[0])
      expect(res).toEqual({ code: 4, stdout: `${pid}\ndone\n`, stderr: '' })
      // the connection is still good for more
      expect((await r.exec(['echo', 'next'])).stdout).toBe('next\n')
    } finally {
      await r.close()
      // left running on purpose (like `ssh host 'cmd &'`); end it here by its pid
      if (pid > 1) process.kill(pid, 'SIGKILL')
    }
  })
})

describe('timeouts', () => {
  test('a timeout kills the remote command and everything it started', async () => {
    const tag = uniqueName('shiplinesleep')
    // durations unique to this run, so the check below sees only what this test started
    const [s1, s2] = [3000 + Math.floor(Math.random() * 5000), 9000 + Math.floor(Math.random() * 5000)]
    const p = remote.exec(['sh', '-c', `sleep ${s1} & sleep ${s2}; echo ${tag}`, tag], { timeoutMs: 1500 })
    await expect(p).rejects.toBeInstanceOf(RemoteTimeoutError)
    await expect(p).rejects.toThrow(/did not finish within 1\.5 s and was stopped/)
    const ps = execFileSync('ps', ['-eo', 'pid,args']).toString().split('\n')
    expect(
      ps.filter(l => l.includes(tag) || l.trim().endsWith(`sleep ${s1}`) || l.trim().endsWith(`sleep ${s2}`))
    ).toEqual([])
    // the connection still works afterwards
    expect((await remote.exec(['echo', 'ok'])).stdout).toBe('ok\n')
  })

  test('a command that finishes in time is not affected', async () => {
    expect(await remote.exec(['echo', 'quick'], { timeoutMs: 30_000 })).toEqual({
      code: 0,
      stdout: 'quick\n',
      stderr: ''
    })
  })
})

describe('one connection', () => {
  test('every exec reuses the same connection', async () => {
    const fresh = await startSshd()
    try {
      const r = await connectSsh({
        target: { host: fresh.host, port: fresh.port, user: 'root' },
        privateKey: fresh.clientKey.privateKey,
        fingerprints: [fresh.hostFingerprint]
      })
      for (let i = 0; i < 10; i++) await r.exec(['true'])
      const f = '/tmp/' + uniqueName('shipline-one') + '.txt'
      await r.writeFile(f, 'x')
      await r.readFile(f)
      await r.exec(['rm', '-f', f])
      await r.close()
      expect(fresh.logLines(/Accepted publickey/)).toHaveLength(1)
    } finally {
      await fresh.stop()
    }
  })
})

describe('a host that goes away', () => {
  test('a dropped connection fails the running command with "connection lost", later calls fail clearly', async () => {
    const s = await startSshd()
    let leftover = 0
    try {
      const r = await connectSsh({
        target: { host: s.host, port: s.port, user: 'root' },
        privateKey: s.clientKey.privateKey,
        knownHosts: s.knownHostsLine
      })
      let started!: (pid: number) => void
      const isStarted = new Promise<number>(res => (started = res))
      const p = r.exec(['sh', '-c', 'echo $$; exec sleep 60'], { onStdout: c => started(Number(c.trim())) })
      leftover = await isStarted
      s.dropConnections()
      await expect(p).rejects.toThrow(/connection to root@127\.0\.0\.1:\d+ was lost while running 'sh -c/)
      await expect(r.exec(['true'])).rejects.toThrow(/connection to root@127\.0\.0\.1:\d+ is closed/)
      await r.close()
    } finally {
      await s.stop()
      // without a pty nothing on the host gets a hangup: the command outlives the connection (by design
      // of sshd); end it here by its pid
      if (leftover) process.kill(leftover, 'SIGKILL')
    }
  })

  test('a host that stops answering is dropped by keepalive', async () => {
    const s = await startSshd()
    try {
      const r = await connectSsh({
        target: { host: s.host, port: s.port, user: 'root' },
        privateKey: s.clientKey.privateKey,
        knownHosts: s.knownHostsLine,
        keepaliveIntervalMs: 200
      })
      s.freeze()
      await expect(r.exec(['true'])).rejects.toThrow(
        /connection to root@127\.0\.0\.1:\d+ (was lost|is closed).*(keepalive|Keepalive)/i
      )
      s.thaw()
      await r.close()
    } finally {
      await s.stop()
    }
  })
})

describe('hosts with few sessions per connection', () => {
  test.each([2, 1])('MaxSessions %i: parallel commands and files still all run', async max => {
    const s = await startSshd({ password: randomPassword(), extraConfig: [`MaxSessions ${max}`] })
    try {
      const r = await connectSsh({
        target: { host: s.host, port: s.port, user: s.passwordUser! },
        privateKey: s.clientKey.privateKey,
        knownHosts: s.knownHostsLine
      })
      const f = `/tmp/${uniqueName('shipline-maxs')}`
      await r.writeFile(f, 'one')
      const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => r.exec(['sh', '-c', `exit ${i}`])))
      expect(rs.map(x => x.code)).toEqual(Array.from({ length: 12 }, (_, i) => i))
      await r.writeFile(f, 'two')
      expect((await r.readFile(f)).toString()).toBe('two')
      await r.exec(['rm', '-f', f])
      await r.close()
    } finally {
      await s.stop()
    }
  })
})

describe('chatty login shells', () => {
  test('stderr printed by the host before the command (rc files) stays stderr; timeouts still kill', async () => {
    // ForceCommand runs like an rc file would: noise on stderr, then the command line
    const s = await startSshd({
      extraConfig: ['ForceCommand echo rc-noise >&2; eval "$SSH_ORIGINAL_COMMAND"']
    })
    try {
      const r = await connectSsh({
        target: { host: s.host, port: s.port, user: 'root' },
        privateKey: s.clientKey.privateKey,
        knownHosts: s.knownHostsLine
      })
      expect(await r.exec(['sh', '-c', 'printf x; echo e >&2; exit 3'])).toEqual({
        code: 3,
        stdout: 'x',
        stderr: 'rc-noise\ne\n'
      })
      const tag = uniqueName('shiplinechatty')
      await expect(r.exec(['sh', '-c', 'sleep 300', tag], { timeoutMs: 500 })).rejects.toBeInstanceOf(
        RemoteTimeoutError
      )
      expect(execFileSync('ps', ['-eo', 'args']).toString()).not.toContain(tag)
      await r.close()
    } finally {
      await s.stop()
    }
  })
})

describe('other login shells', () => {
  test('a login wrapper that does not exec (the shell is not the group leader): a timeout still kills all', async () => {
    const s = await startSshd({ extraConfig: ['ForceCommand /bin/sh -c "$SSH_ORIGINAL_COMMAND"; true'] })
    try {
      const r = await connectSsh({
        target: { host: s.host, port: s.port, user: 'root' },
        privateKey: s.clientKey.privateKey,
        knownHosts: s.knownHostsLine
      })
      const n = 3000 + Math.floor(Math.random() * 5000)
      await expect(
        r.exec(['sh', '-c', `sleep ${n} & sleep ${n + 1}`], { timeoutMs: 500 })
      ).rejects.toBeInstanceOf(RemoteTimeoutError)
      const left = execFileSync('ps', ['-eo', 'args']).toString().split('\n')
      expect(left.filter(l => l.trim() === `sleep ${n}` || l.trim() === `sleep ${n + 1}`)).toEqual([])
      expect((await r.exec(['echo', 'ok'])).stdout).toBe('ok\n')
      await r.close()
    } finally {
      await s.stop()
    }
  })

  test('busybox ash (Alpine hosts): awkward arguments byte-exact, exit codes, timeouts kill the group', async () => {
    const s = await startSshd({
      extraConfig: ['ForceCommand exec /bin/busybox sh -c "$SSH_ORIGINAL_COMMAND"']
    })
    try {
      const r = await connectSsh({
        target: { host: s.host, port: s.port, user: 'root' },
        privateKey: s.clientKey.privateKey,
        knownHosts: s.knownHostsLine
      })
      const args = [
        '',
        "it's",
        '$(id)',
        '`id`',
        'a;b|c&d',
        'x\ny',
        '*',
        '~',
        'ü ✓',
        '\\',
        '$HOME',
        '!x',
        'A=b'
      ]
      const res = await r.exec(['printf', '%s\\0', ...args])
      expect(res.code).toBe(0)
      expect(res.stdout.split('\0').slice(0, -1)).toEqual(args)
      expect((await r.exec(['sh', '-c', 'exit 9'])).code).toBe(9)
      const n = 3000 + Math.floor(Math.random() * 5000)
      await expect(
        r.exec(['sh', '-c', `sleep ${n} & sleep ${n + 1}`], { timeoutMs: 500 })
      ).rejects.toBeInstanceOf(RemoteTimeoutError)
      const left = execFileSync('ps', ['-eo', 'args']).toString().split('\n')
      expect(left.filter(l => l.trim() === `sleep ${n}` || l.trim() === `sleep ${n + 1}`)).toEqual([])
      const f = `/tmp/${uniqueName('shipline-bb')}`
      await r.writeFile(f, 'x', 0o600)
      expect((await r.readFile(f)).toString()).toBe('x')
      await r.exec(['rm', '-f', f])
      await r.close()
    } finally {
      await s.stop()
    }
  })
})

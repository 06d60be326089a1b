// SSH transport costs against a real local sshd (src/testkit/sshd.ts), same run, medians of several runs:
//
//   node bench/ssh-transport.mjs [--runs 3] [--cmds 10] [--files 10]
//
// For two login shells: root (bash, with whatever ~/.bashrc the machine has; sshd makes bash read it)
// and a plain user whose shell is /bin/sh without rc files:
// 1. per remote command: our reused connection (one channel per command) against a new ssh2 connection per
//    command, and against the OpenSSH `ssh` binary per command (what `ssh host cmd` steps do);
// 2. writeFile as the transport does it (the connection's SFTP session: open, then fchmod + pipelined
//    writes + close, then posix-rename) against its `sh` fallback (mktemp, chmod, cat, mv with the data on
//    stdin: one channel, but a login shell started on the host);
// 3. 20 commands in parallel on one connection against the same 20 one after the other;
// 4. commands and SFTP writes on a connection without TCP_NODELAY (Nagle's algorithm on, ssh2's default).
//
// The transport is compiled on the fly from src/ with esbuild (a devDependency) into build/ (gitignored),
// so the figures are for the current source. Over loopback the network round trip is ~0; on a real link
// each saved handshake also saves several round trips, so the connection ratios here are a floor.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTs, options, time, upperMedian as median } from './lib.mjs'

const { runs: RUNS, cmds: CMDS, files: FILES } = options({ runs: 3, cmds: 10, files: 10 })

const { connectSsh, startSshd } = await loadTs('ssh', [
  "export { connectSsh } from './src/lib/ssh/client.ts'",
  "export { startSshd } from './src/testkit/sshd.ts'"
])

// `password` makes the fixture create its plain user (shell /bin/sh); the bench logs in with the key
const sshd = await startSshd({
  password: randomBytes(12).toString('hex'),
  extraConfig: ['MaxStartups 100:30:200']
})
const tmp = mkdtempSync(join(tmpdir(), 'shipline-bench-ssh-'))
// the ssh binary needs key and known_hosts files; the bench writes them to a private temp dir (the
// transport itself never does)
writeFileSync(join(tmp, 'id'), sshd.clientKey.privateKey, { mode: 0o600 })
writeFileSync(join(tmp, 'known_hosts'), sshd.knownHostsLine + '\n')
const payload = Buffer.alloc(64 * 1024, 'x')

async function measure(user) {
  const opts = {
    target: { host: sshd.host, port: sshd.port, user },
    privateKey: sshd.clientKey.privateKey,
    knownHosts: sshd.knownHostsLine
  }
  const remote = await connectSsh(opts)
  const viaSh = await connectSsh({ ...opts, fileTransfer: 'exec' })
  const nagle = await connectSsh({ ...opts, noDelay: false })
  const dir = `/tmp/shipline-bench-${user}-${process.pid}`
  await remote.exec(['mkdir', '-p', dir])
  const sshArgs = ['-i', join(tmp, 'id'), '-p', String(sshd.port), '-o', 'BatchMode=yes']
  sshArgs.push('-o', `UserKnownHostsFile=${join(tmp, 'known_hosts')}`, '-o', 'LogLevel=ERROR')
  sshArgs.push(`${user}@${sshd.host}`, 'true')
  const r = {
    nagle: [],
    nagleWrite: [],
    reused: [],
    ssh2New: [],
    sshBin: [],
    writeSh: [],
    writeSftp: [],
    parallel: [],
    serial: []
  }
  const perCmd = async f => (await time(async () => { for (let i = 0; i < CMDS; i++) await f(i) })) / CMDS // prettier-ignore
  const perFile = async f => (await time(async () => { for (let i = 0; i < FILES; i++) await f(i) })) / FILES // prettier-ignore
  try {
    for (let run = 0; run < RUNS; run++) {
      r.reused.push(await perCmd(() => remote.exec(['true'])))
      r.nagle.push(await perCmd(() => nagle.exec(['true'])))
      r.nagleWrite.push(await perFile(i => nagle.writeFile(`${dir}/n${i}`, payload, 0o600)))
      r.ssh2New.push(
        await perCmd(async () => {
          const c = await connectSsh(opts)
          await c.exec(['true'])
          await c.close()
        })
      )
      r.sshBin.push(
        await perCmd(() => {
          const p = spawnSync('ssh', sshArgs)
          if (p.status !== 0) throw new Error(`ssh failed (${p.status} ${p.signal} ${p.error}): ${p.stderr}`)
        })
      )
      r.writeSh.push(await perFile(i => viaSh.writeFile(`${dir}/f${i}`, payload, 0o600)))
      r.writeSftp.push(await perFile(i => remote.writeFile(`${dir}/s${i}`, payload, 0o600)))
      const job = () => remote.exec(['sh', '-c', 'sleep 0.05'])
      r.parallel.push(await time(() => Promise.all(Array.from({ length: 20 }, job))))
      r.serial.push(
        await time(async () => {
          for (let i = 0; i < 20; i++) await job()
        })
      )
    }
  } finally {
    await remote.exec(['rm', '-rf', dir]).catch(() => undefined)
    await remote.close()
    await viaSh.close()
    await nagle.close()
  }
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)]))
}

try {
  const f = x => x.toFixed(2)
  console.log(`runs: ${RUNS} (medians), ${CMDS} commands, ${FILES} files of 64 KiB, node ${process.version}`)
  for (const [user, what] of [
    [sshd.passwordUser, 'plain /bin/sh login'],
    ['root', "root: bash reading this machine's ~/.bashrc"]
  ]) {
    const m = await measure(user)
    const rows = [
      ['per command, reused ssh2 connection', m.reused, 1],
      ['per command, same without TCP_NODELAY', m.nagle, m.nagle / m.reused],
      ['per command, new ssh2 connection each', m.ssh2New, m.ssh2New / m.reused],
      ['per command, OpenSSH ssh binary each', m.sshBin, m.sshBin / m.reused],
      ['writeFile 64 KiB over SFTP (3 round trips)', m.writeSftp, 1],
      ['writeFile 64 KiB, SFTP without TCP_NODELAY', m.nagleWrite, m.nagleWrite / m.writeSftp],
      ['writeFile 64 KiB over sh + stdin', m.writeSh, m.writeSh / m.writeSftp],
      ['20 × sleep 0.05, parallel on one connection', m.parallel, 1],
      ['20 × sleep 0.05, one after the other', m.serial, m.serial / m.parallel]
    ]
    console.log(`\n${what}`)
    for (const [label, ms, ratio] of rows)
      console.log(`  ${label.padEnd(44)} ${f(ms).padStart(9)} ms  ${f(ratio)}x`)
  }
} finally {
  await sshd.stop()
  rmSync(tmp, { recursive: true, force: true })
}

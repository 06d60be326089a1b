// SSH transport costs against a real local sshd (src/testkit/sshd.ts), same run, medians of several runs:
//
//   node bench/ssh-transport.mjs [--runs 3] [--cmds 20] [--files 20]
//
// 1. per remote command: our reused connection (one channel per command) against a new ssh2 connection per
//    command, and against the OpenSSH `ssh` binary per command (what `ssh host cmd` steps do);
// 2. writeFile as the transport does it (SFTP on the connection's one SFTP session: open, then fchmod +
//    pipelined writes + close, then posix-rename) against the `sh` fallback (mktemp, chmod, cat, mv with
//    the data on stdin: one channel, but a login shell started on the host);
// 3. 20 commands in parallel on one connection against the same 20 one after the other.
//
// The transport is compiled on the fly from src/ with esbuild (a devDependency) into build/ (gitignored),
// so the figures are for the current source. Over loopback the network round trip is ~0; on a real link
// each saved handshake also saves several RTTs, so the ratios here are a floor.
import { build } from 'esbuild'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const args = process.argv.slice(2)
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i === -1 ? def : Number(args[i + 1])
}
const RUNS = opt('runs', 3)
const CMDS = opt('cmds', 20)
const FILES = opt('files', 20)

const root = resolve(import.meta.dirname, '..')
const out = join(root, 'build', 'bench-ssh')
mkdirSync(out, { recursive: true })
await build({
  entryPoints: { client: join(root, 'src/lib/ssh/client.ts'), sshd: join(root, 'src/testkit/sshd.ts') },
  outdir: out,
  format: 'esm',
  platform: 'node',
  bundle: true,
  packages: 'external',
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning'
})
const { connectSsh } = await import(pathToFileURL(join(out, 'client.mjs')).href)
const { startSshd } = await import(pathToFileURL(join(out, 'sshd.mjs')).href)

const median = xs => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const time = async f => {
  const t = process.hrtime.bigint()
  await f()
  return Number(process.hrtime.bigint() - t) / 1e6
}

const sshd = await startSshd({ extraConfig: ['MaxStartups 100:30:200'] })
const tmp = mkdtempSync(join(tmpdir(), 'shipline-bench-ssh-'))
// the ssh binary needs key and known_hosts files; the bench writes them to a private temp dir (the
// transport itself never does)
writeFileSync(join(tmp, 'id'), sshd.clientKey.privateKey, { mode: 0o600 })
writeFileSync(join(tmp, 'known_hosts'), sshd.knownHostsLine + '\n')
const target = { host: sshd.host, port: sshd.port, user: sshd.user }
const opts = { target, privateKey: sshd.clientKey.privateKey, knownHosts: sshd.knownHostsLine }
const remote = await connectSsh(opts)
const dir = `/tmp/shipline-bench-${process.pid}`
await remote.exec(['mkdir', '-p', dir])
const viaSh = await connectSsh({ ...opts, fileTransfer: 'exec' })
const payload = Buffer.alloc(64 * 1024, 'x')

const results = {
  reused: [],
  ssh2New: [],
  sshBin: [],
  writeExec: [],
  writeSftp: [],
  parallel: [],
  serial: []
}
try {
  for (let run = 0; run < RUNS; run++) {
    results.reused.push(
      (await time(async () => {
        for (let i = 0; i < CMDS; i++) await remote.exec(['true'])
      })) / CMDS
    )
    results.ssh2New.push(
      (await time(async () => {
        for (let i = 0; i < CMDS; i++) {
          const r = await connectSsh(opts)
          await r.exec(['true'])
          await r.close()
        }
      })) / CMDS
    )
    const sshArgs = [
      '-i',
      join(tmp, 'id'),
      '-p',
      String(sshd.port),
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes'
    ]
    sshArgs.push(
      '-o',
      `UserKnownHostsFile=${join(tmp, 'known_hosts')}`,
      '-o',
      'LogLevel=ERROR',
      `root@${sshd.host}`,
      'true'
    )
    results.sshBin.push(
      (await time(async () => {
        for (let i = 0; i < CMDS; i++) {
          const r = spawnSync('ssh', sshArgs)
          if (r.status !== 0) throw new Error(`ssh failed (${r.status} ${r.signal} ${r.error}): ${r.stderr}`)
        }
      })) / CMDS
    )
    results.writeExec.push(
      (await time(async () => {
        for (let i = 0; i < FILES; i++) await viaSh.writeFile(`${dir}/f${i}`, payload, 0o600)
      })) / FILES
    )
    results.writeSftp.push(
      (await time(async () => {
        for (let i = 0; i < FILES; i++) await remote.writeFile(`${dir}/s${i}`, payload, 0o600)
      })) / FILES
    )
    const job = () => remote.exec(['sh', '-c', 'sleep 0.05'])
    results.parallel.push(await time(() => Promise.all(Array.from({ length: 20 }, job))))
    results.serial.push(
      await time(async () => {
        for (let i = 0; i < 20; i++) await job()
      })
    )
  }
} finally {
  await remote.exec(['rm', '-rf', dir]).catch(() => undefined)
  await remote.close()
  await viaSh.close()
  await sshd.stop()
  rmSync(tmp, { recursive: true, force: true })
}

const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]))
const f = x => x.toFixed(2)
console.log(`runs: ${RUNS} (medians), ${CMDS} commands, ${FILES} files of 64 KiB, node ${process.version}`)
console.log(`per command, reused ssh2 connection:        ${f(m.reused)} ms`)
console.log(
  `per command, new ssh2 connection each:      ${f(m.ssh2New)} ms  (${f(m.ssh2New / m.reused)}x the reused connection)`
)
console.log(
  `per command, OpenSSH ssh binary each:       ${f(m.sshBin)} ms  (${f(m.sshBin / m.reused)}x the reused connection)`
)
console.log(`writeFile 64 KiB over SFTP (3 round trips): ${f(m.writeSftp)} ms`)
console.log(
  `writeFile 64 KiB over sh + stdin:           ${f(m.writeExec)} ms  (${f(m.writeExec / m.writeSftp)}x SFTP)`
)
console.log(`20 × sleep 0.05, parallel on one connection: ${f(m.parallel)} ms`)
console.log(`20 × sleep 0.05, one after the other:        ${f(m.serial)} ms  (${f(m.serial / m.parallel)}x)`)

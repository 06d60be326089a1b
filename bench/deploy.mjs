// Deploy and rollback costs on a real compose host, same run, medians over --runs:
//
//   node bench/deploy.mjs [--runs 5]
//
// The host is a real sshd on loopback (src/testkit/sshd.ts) in front of this machine's Docker engine and
// docker-compose v1; a real registry resolves the tags. The app is the busybox sample (src/testkit/images.ts,
// healthcheck every 1 s), stop_grace_period 1 s, images already on the host (the pull is a no-op check).
//
// 1. deploy overhead: shipline deploy() of the next version (lock, upload, image check, up -d, health gate,
//    switch, ledger, prune, unlock) against a bare `ssh host docker-compose ... up -d` of the same release
//    files with the OpenSSH binary (what `ssh host 'docker compose up -d'` steps do: no health gate, no
//    record). Both recreate the one container.
// 2. the same bare up -d followed by polling `ssh host docker inspect` until the container is healthy: what
//    a hand-made health gate costs.
// 3. rollback wall time from start to healthy, images cached (runbooks promise < 2 minutes).
// 4. SSH connections and round trips (remote commands + file writes) per deploy and per rollback.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTs, msSince as ms, options, seconds as fmt, upperMedian as median } from './lib.mjs'

const { runs: RUNS } = options({ runs: 5 })
const L = await loadTs('deploy', 'bench/deploy-entry.ts')

const [reg, sshd] = await Promise.all([L.startRegistry({ auth: 'none' }), L.startSshd()])
const tmp = mkdtempSync(join(tmpdir(), 'shipline-bench-deploy-'))
const path = join(tmp, 'host', 'app')
const repo = `${reg.host}/${L.uniqueName('bench-deploy')}/app`
const versions = ['v1', 'v2', 'v3']
const project = L.projectName(path)
try {
  for (const v of versions) {
    L.buildAppImage({ tag: `${repo}:${v}`, version: v })
    execFileSync('docker', ['push', '-q', `${repo}:${v}`], { stdio: 'ignore' })
  }
  const compose = join(tmp, 'docker-compose.yml')
  writeFileSync(
    compose,
    'version: "3.8"\nservices:\n  web:\n    image: placeholder\n    init: true\n    stop_grace_period: 1s\n    ports: ["127.0.0.1::8080"]\n'
  )
  // the ssh binary needs files; shipline itself never writes the key anywhere
  writeFileSync(join(tmp, 'id'), sshd.clientKey.privateKey, { mode: 0o600 })
  writeFileSync(join(tmp, 'known_hosts'), sshd.knownHostsLine + '\n')
  const ssh = line =>
    spawnSync(
      'ssh',
      [
        '-q',
        '-i',
        join(tmp, 'id'),
        '-o',
        `UserKnownHostsFile=${join(tmp, 'known_hosts')}`,
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'BatchMode=yes',
        '-p',
        String(sshd.port),
        'root@127.0.0.1',
        line
      ],
      { encoding: 'utf8' }
    )

  const client = new L.RegistryClient({ registry: reg.host })
  let connections = 0
  const counts = { exec: 0, writeFile: 0 }
  const connect = async () => {
    connections++
    const r = await L.connectSsh({
      target: { host: '127.0.0.1', port: sshd.port, user: 'root' },
      privateKey: sshd.clientKey.privateKey,
      knownHosts: sshd.knownHostsLine
    })
    return {
      label: r.label,
      exec: (a, o) => (counts.exec++, r.exec(a, o)),
      writeFile: (p, d, m) => (counts.writeFile++, r.writeFile(p, d, m)),
      readFile: p => r.readFile(p),
      close: () => r.close()
    }
  }
  const log = { info: () => {}, warning: m => console.error('warning:', m) }
  const common = {
    hosts: ['bench'],
    connect,
    path,
    healthTimeout: 120,
    lockTimeout: 60,
    log,
    stableSeconds: 1
  }
  const deployOnce = v =>
    L.deploy({
      ...common,
      composeFiles: [compose],
      images: [`web=${repo}:${v}`],
      version: v,
      autoRollback: true,
      keepReleases: 10,
      resolveDigest: async r => (await client.resolve(r.repository, r.tag)).digest
    })

  // warm-up: first release (creates the folder layout) and a second one
  for (const v of ['v1', 'v2'])
    if ((await deployOnce(v)).status !== 'deployed') throw new Error(`warm-up deploy ${v} failed`)
  const releases = {}
  const shipline = []
  const bare = []
  const bareGate = []
  const rollbacks = []
  const perDeploy = []
  const perRollback = []
  for (let i = 0; i < RUNS; i++) {
    const v = versions[(i + 2) % versions.length]
    counts.exec = counts.writeFile = 0
    const c0 = connections
    let t = process.hrtime.bigint()
    const r = await deployOnce(v)
    shipline.push(ms(t))
    if (r.status !== 'deployed') throw new Error(`deploy ${v}: ${r.error}`)
    perDeploy.push({ connections: connections - c0, exec: counts.exec, writeFile: counts.writeFile })
    releases[v] = r.releaseId

    // the same release files, bare: one ssh, docker-compose up -d
    const dir = `${path}/.shipline/releases/${r.releaseId}`
    const up =
      L.composeArgv('v1', project, dir, ['docker-compose.yml', 'shipline.override.yml']).join(' ') +
      ' up -d --force-recreate'
    t = process.hrtime.bigint()
    const b = ssh(up)
    bare.push(ms(t))
    if (b.status !== 0) throw new Error(`bare up failed: ${b.stderr}`)

    // bare + a hand-made health gate: poll over ssh until healthy
    t = process.hrtime.bigint()
    ssh(up)
    for (;;) {
      const s = ssh(
        `docker inspect --format '{{.State.Health.Status}}' $(docker ps -q --filter label=com.docker.compose.project=${project})`
      )
      if (s.stdout.trim() === 'healthy') break
    }
    bareGate.push(ms(t))

    // rollback to the previous release, images cached: start → healthy
    counts.exec = counts.writeFile = 0
    const c1 = connections
    t = process.hrtime.bigint()
    const rb = await L.rollback({ ...common })
    rollbacks.push(ms(t))
    if (rb.status !== 'rolled-back') throw new Error(`rollback: ${rb.error}`)
    perRollback.push({ connections: connections - c1, exec: counts.exec, writeFile: counts.writeFile })
  }
  const s = median(shipline)
  const b = median(bare)
  const g = median(bareGate)
  const rbm = median(rollbacks)
  const pd = perDeploy[0]
  const pr = perRollback[0]
  console.log(`runs: ${RUNS} (medians), docker-compose v1, busybox app with a 1 s healthcheck, images cached`)
  console.log(`shipline deploy (lock, upload, up, health gate, switch, ledger, prune): ${fmt(s)}`)
  console.log(
    `bare ssh + docker-compose up -d (new ssh connection, no gate):          ${fmt(b)}   shipline/bare = ${(s / b).toFixed(2)}x, overhead ${fmt(s - b)}`
  )
  console.log(
    `bare ssh up -d + polling ssh docker inspect until healthy:              ${fmt(g)}   shipline/bare+gate = ${(s / g).toFixed(2)}x`
  )
  console.log(
    `rollback start → healthy (images cached):                               ${fmt(rbm)}   (max ${fmt(Math.max(...rollbacks))}; runbook bar 120 s: ${(120000 / rbm).toFixed(0)}x under)`
  )
  console.log(
    `per deploy: ${pd.connections} SSH connection, ${pd.exec + pd.writeFile} round trips (${pd.exec} commands incl. the lock holder, ${pd.writeFile} file writes)`
  )
  console.log(
    `per rollback: ${pr.connections} SSH connection, ${pr.exec + pr.writeFile} round trips (${pr.exec} commands, ${pr.writeFile} file writes)`
  )
} finally {
  L.removeProject(path)
  L.removeRepository(repo)
  await Promise.all([reg.stop(), sshd.stop()])
  rmSync(tmp, { recursive: true, force: true })
}

// Wall time of a fleet deploy, same run: one host, five hosts one after the other (max-parallel 1), and
// five hosts canary-first then four at once (max-parallel 4):
//
//   node bench/fleet.mjs [--runs 3]
//
// Five sandbox hosts are five real sshd on loopback (__tests__/fleet/fleet-hosts.ts: each its own host
// key, SSH connection, project path and published port) in front of this machine's one Docker engine and
// docker-compose v1; a real registry resolves the tags. Each run deploys the next version (v1, v2, v1 …)
// of the busybox sample app to every host, health-gated (stable 1 s); medians over the runs. The engine is
// shared, so parallel hosts here compete for the same 2 cores and dockerd, unlike five real VPSes: the
// parallel figure is a ceiling on what max-parallel costs, not the speed-up a real fleet gets.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTs, options, upperMedian as median } from './lib.mjs'

const { runs: RUNS } = options({ runs: 3 })
const { deploy, buildAppImage, removeImages, uniqueName, startRegistry, FLEET_COMPOSE, startFleet } =
  await loadTs('fleet', 'bench/fleet-entry.ts')

const reg = await startRegistry({ auth: 'none' })
const id = uniqueName('fb').toLowerCase()
const image = `${reg.host}/${id}`
const base = mkdtempSync(join(tmpdir(), 'shipline-fleet-bench-'))
const fleets = []
const quiet = { info: () => undefined, warning: m => console.error('  warn: ' + m.split('\n')[0]) }
const results = []
const removeFleet = async f => {
  for (const h of f.hosts) {
    const ids = execFileSync(
      'docker',
      ['ps', '-aq', '--filter', `label=com.docker.compose.project=${h.project}`],
      {
        encoding: 'utf8'
      }
    ).trim()
    if (ids) execFileSync('docker', ['rm', '-f', ...ids.split('\n')], { stdio: 'ignore' })
    try {
      execFileSync('docker', ['network', 'rm', `${h.project}_default`], { stdio: 'ignore' })
    } catch {
      /* none */
    }
  }
  await f.stop()
}
try {
  for (const v of ['v1', 'v2']) {
    buildAppImage({ tag: `${image}:${v}`, version: `${v}_${id}` })
    execFileSync('docker', ['push', '-q', `${image}:${v}`], { stdio: 'ignore' })
  }
  const compose = join(base, 'docker-compose.yml')
  writeFileSync(compose, FLEET_COMPOSE)
  const resolveDigest = async ref => {
    const r = await globalThis.fetch(`${reg.url}/v2/${ref.repository}/manifests/${ref.tag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }
    })
    return r.headers.get('docker-content-digest')
  }
  const scenario = async (name, n, maxParallel) => {
    const fleet = await startFleet(n, `${base}/${name}`)
    fleets.push(fleet)
    const common = {
      hosts: fleet.labels,
      connect: l => fleet.connect(l),
      path: `${base}/${name}`,
      healthTimeout: 60,
      lockTimeout: 60,
      maxParallel,
      log: quiet,
      stableSeconds: 1,
      composeFiles: [compose],
      envFile: 'APP_PORT=@PORT@\nAPP_INNER_PORT=@INNER@\n',
      autoRollback: true,
      keepReleases: 5,
      resolveDigest
    }
    // the first deploy creates the projects; it is not timed
    const first = await deploy({ ...common, images: [`app=${image}:v1`], version: 'v1' })
    if (first.status !== 'deployed') throw new Error(`${name}: ${first.error}`)
    const times = []
    let execs = 0
    for (let r = 0; r < RUNS; r++) {
      const v = r % 2 === 0 ? 'v2' : 'v1'
      const t = Date.now()
      const res = await deploy({ ...common, images: [`app=${image}:${v}`], version: v })
      times.push(Date.now() - t)
      if (res.status !== 'deployed') throw new Error(`${name}: ${res.error}`)
      execs = res.hosts.reduce((a, h) => a + h.execs, 0)
      process.stderr.write('.')
    }
    results.push({
      name,
      n,
      maxParallel,
      ms: median(times),
      execs,
      connections: fleet.connections / (RUNS + 1)
    })
  }
  await scenario('one', 1, 1)
  await scenario('serial', 5, 1)
  await scenario('parallel', 5, 4)
} finally {
  for (const f of fleets.splice(0)) await removeFleet(f)
  await reg.stop()
  removeImages(`${image}:v1`, `${image}:v2`)
  rmSync(base, { recursive: true, force: true })
}
process.stderr.write('\n')
const one = results.find(r => r.name === 'one')
console.log(`\nfleet deploy wall time, median of ${RUNS} runs (after an untimed first deploy)\n`)
console.log(
  '| hosts | max-parallel | wall time | vs one host | SSH connections | remote round trips (all hosts) |'
)
console.log('|---|---|---|---|---|---|')
for (const r of results)
  console.log(
    `| ${r.n} | ${r.maxParallel} | ${(r.ms / 1000).toFixed(1)} s | ${(r.ms / one.ms).toFixed(2)}x | ${r.connections} | ${r.execs} |`
  )

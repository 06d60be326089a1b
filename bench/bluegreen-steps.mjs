// Where a blue-green deploy's wall time goes, step by step, and what a one-click rollback costs:
//
//   node bench/bluegreen-steps.mjs [--runs 5] [--drain 2]
//
// deploy() over a real sshd (loopback) with the real registry, Docker engine, docker-compose v1 and nginx,
// the busybox sample app (healthcheck every 1 s, stable 1 s), under steady load through nginx. Each run is
// a deploy (v1 ↔ v2) and a rollback; every remote step's start and end come from deploy()'s onStep events,
// so the table shows each step's median share of the wall time, the app's own health wait apart.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { loadTs, options, median } from './lib.mjs'

const { runs: RUNS, drain: DRAIN } = options({ runs: 5, drain: 2 })
const lib = await loadTs('bluegreen-steps', 'bench/bluegreen-steps-entry.ts')
const { deploy, rollback, blueGreenBehind, upstreamName, buildAppImage, removeImages } = lib
const { freePort, uniqueName, startNginx, startRegistry, sshFleet, startSshd, startLoad, projectName } = lib

const reg = await startRegistry({ auth: 'none' })
const sshd = await startSshd()
const id = uniqueName('bgs').toLowerCase()
const image = `${reg.host}/${id}`
const base = mkdtempSync(join(tmpdir(), 'shipline-bgs-'))
const path = `${base}/app`
mkdirSync(`${path}/nginx`, { recursive: true })
const nginx = await startNginx({ includeFile: `${path}/nginx/web.conf`, upstreamName: upstreamName('web') })
const quiet = { info: () => undefined, warning: m => console.error('  warn: ' + m.split('\n')[0]) }
const removeProjects = () => {
  for (const p of ['', '-blue', '-green']) {
    const label = `label=com.docker.compose.project=${projectName(path)}${p}`
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', label], { encoding: 'utf8' }).trim()
    if (ids) execFileSync('docker', ['rm', '-f', ...ids.split('\n')], { stdio: 'ignore' })
  }
}
try {
  for (const v of ['v1', 'v2']) {
    buildAppImage({ tag: `${image}:${v}`, version: `${v}_${id}` })
    execFileSync('docker', ['push', '-q', `${image}:${v}`], { stdio: 'ignore' })
  }
  const compose = join(base, 'docker-compose.yml')
  writeFileSync(
    compose,
    'services:\n  web:\n    image: placeholder\n    init: true\n    mem_limit: 32m\n    network_mode: bridge\n' +
      '    ports: ["127.0.0.1:${SHIPLINE_PORT}:8080"]\n'
  )
  const [a, b] = [await freePort(), await freePort()]
  const resolveDigest = async ref => {
    const r = await globalThis.fetch(`${reg.url}/v2/${ref.repository}/manifests/${ref.tag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }
    })
    return r.headers.get('docker-content-digest')
  }
  let events = []
  const common = {
    ...sshFleet(sshd),
    path,
    healthTimeout: 60,
    lockTimeout: 60,
    log: quiet,
    stableSeconds: 1,
    composeFiles: [compose],
    autoRollback: true,
    keepReleases: 5,
    resolveDigest,
    onStep: e => events.push({ ...e, t: performance.now() }),
    runtime: blueGreenBehind(nginx, {
      ports: `web=${a},${b}`,
      includeDir: `${path}/nginx`,
      drainSeconds: DRAIN
    })
  }
  await deploy({ ...common, images: [`web=${image}:v1`], version: 'v1' }) // untimed: creates the slot
  const rows = { deploy: [], rollback: [] }
  const load = startLoad({ url: `${nginx.url}/version`, rate: 40 })
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ['deploy', 'rollback']) {
      events = []
      const t0 = performance.now()
      const v = i % 2 === 0 ? 'v2' : 'v1'
      const r =
        kind === 'deploy'
          ? await deploy({ ...common, images: [`web=${image}:${v}`], version: `${v}-${i}` })
          : await rollback({ ...common })
      const wall = performance.now() - t0
      if (r.status !== (kind === 'deploy' ? 'deployed' : 'rolled-back'))
        throw new Error(`${kind}: ${r.status} ${r.error}`)
      const steps = {}
      const open = {}
      for (const e of events) {
        if (e.phase === 'start') open[e.step] = e.t
        else steps[e.step] = (steps[e.step] ?? 0) + (e.t - open[e.step])
      }
      const inSteps = Object.values(steps).reduce((x, y) => x + y, 0)
      rows[kind].push({ wall, steps, other: wall - inSteps })
      if (kind === 'rollback') {
        // back to the state the next deploy expects
        await deploy({ ...common, images: [`web=${image}:${v}`], version: `${v}-${i}-again` })
      }
    }
  }
  const res = await load.stop()
  for (const kind of ['deploy', 'rollback']) {
    const names = [...new Set(rows[kind].flatMap(r => Object.keys(r.steps)))]
    const wall = median(rows[kind].map(r => r.wall))
    console.log(`\n${kind}: median wall ${(wall / 1000).toFixed(2)} s over ${RUNS} runs (drain ${DRAIN} s)`)
    console.log('| step | median | share |')
    console.log('|---|---|---|')
    for (const n of [...names, 'outside steps (connect, plan, afterClose drain/stop, prune)']) {
      const xs = rows[kind].map(r => (n.startsWith('outside') ? r.other : (r.steps[n] ?? 0)))
      const m = median(xs)
      console.log(`| ${n} | ${(m / 1000).toFixed(2)} s | ${((100 * m) / wall).toFixed(0)}% |`)
    }
  }
  console.log(
    `\nload through nginx: ${res.sent} requests, failed ${Object.values(res.failed).reduce((x, y) => x + y, 0)}, non-2xx ${Object.values(res.non2xx).reduce((x, y) => x + y, 0)}`
  )
} finally {
  removeProjects()
  await nginx.stop()
  await sshd.stop()
  await reg.stop()
  removeImages(`${image}:v1`, `${image}:v2`)
  rmSync(base, { recursive: true, force: true })
}

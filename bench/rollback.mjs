// A one-click rollback, click to the old release serving 100%, and the requests lost during it, for each
// way a release reaches a host, measured in one run:
//
//   node bench/rollback.mjs [--runs 3] [--steps 1] [--only 'warm']
//
// recreate (the service's port published directly), and blue-green behind nginx, haproxy and caddy: the old
// slot kept stopped after the switch (the rollback starts those containers again), and kept warm
// (`keep-previous-warm`: still running, so the rollback is a proxy switch). deploy() and rollback()
// over a real sshd (loopback), the real registry, Docker engine and docker-compose v1, the busybox sample app
// (healthcheck every 1 s, stable 1 s), 100 requests/s of keep-alive load through the proxy (recreate: to the
// port). "serving" is the end of the rollback's `switch` step for blue-green (the proxy and `current` moved
// in one host-side step; the health wait precedes it) and of its `health` step for recreate (the old release
// replaced the new one at `up`: serving once healthy). Lost: requests of the load that got no 2xx while the
// rollback ran.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { loadTs, options, median } from './lib.mjs'

const { runs: RUNS, steps: STEPS, only: ONLY } = options({ runs: 3, steps: '', only: '' })
// --steps 1: each rollback's steps (seconds, and the end's offset from the click); --only <regex>: those ways
const lib = await loadTs('rollback', 'bench/rollback-entry.ts')
const { deploy, rollback, runtimeFactory, parseSlotPorts, upstreamName, buildAppImage, removeImages } = lib
const { freePort, uniqueName, startNginx, startHaproxy, startCaddy, startRegistry, sshFleet, startSshd } = lib
const { startLoad, projectName } = lib

const reg = await startRegistry({ auth: 'none' })
const sshd = await startSshd()
const id = uniqueName('rb').toLowerCase()
const image = `${reg.host}/${id}`
const base = mkdtempSync(join(tmpdir(), 'shipline-rb-'))
const quiet = { info: () => undefined, warning: m => console.error('  warn: ' + m.split('\n')[0]) }
const parts = []
const paths = []
const removeProjects = path => {
  for (const p of ['', '-blue', '-green']) {
    const label = `label=com.docker.compose.project=${projectName(path)}${p}`
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', label], { encoding: 'utf8' }).trim()
    if (ids) execFileSync('docker', ['rm', '-f', ...ids.split('\n')], { stdio: 'ignore' })
  }
}
const resolveDigest = async ref => {
  const r = await globalThis.fetch(`${reg.url}/v2/${ref.repository}/manifests/${ref.tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }
  })
  return r.headers.get('docker-content-digest')
}
const compose = (dir, port) => {
  const file = join(dir, 'docker-compose.yml')
  writeFileSync(
    file,
    'services:\n  web:\n    image: placeholder\n    init: true\n    mem_limit: 64m\n    network_mode: bridge\n' +
      `    ports: ["127.0.0.1:${port}:8080"]\n`
  )
  return file
}

/** One way to run the app: its deploy options and the URL the load goes to (`nginx warm`: kept warm). */
async function setup(label) {
  const [name, warm] = label.split(' ')
  const dir = join(base, label.replace(' ', '-'))
  const path = join(dir, 'app')
  mkdirSync(`${path}-nginx`, { recursive: true })
  paths.push(path)
  if (name === 'recreate') {
    const port = await freePort()
    return { path, url: `http://127.0.0.1:${port}`, opts: { composeFiles: [compose(dir, port)] } }
  }
  const [a, b] = [await freePort(), await freePort()]
  let url
  let proxy = { name: 'nginx' }
  let nginx
  if (name === 'nginx') {
    nginx = await startNginx({
      includeFile: `${path}-nginx/web.conf`,
      upstreamName: upstreamName('web'),
      initialPort: a
    })
    parts.push(nginx)
    url = nginx.url
  } else if (name === 'haproxy') {
    const hx = await startHaproxy({ backends: [{ name: upstreamName('web'), initialPort: a }] })
    parts.push(hx)
    url = hx.url
    proxy = { name: 'haproxy', socket: hx.socket }
  } else {
    const cd = await startCaddy({ id: upstreamName('web'), initialPort: a })
    parts.push(cd)
    url = cd.url
    proxy = { name: 'caddy', admin: cd.admin }
  }
  const runtime = runtimeFactory({
    strategy: 'blue-green',
    target: 'compose',
    blueGreen: {
      ports: parseSlotPorts(`web=${a},${b}`),
      includeDir: `${path}-nginx`,
      testCommand: nginx?.testCommand ?? 'true',
      reloadCommand: nginx?.reloadCommand ?? 'true',
      drainSeconds: 1,
      minFreeMiB: 16,
      warmSeconds: warm ? 600 : 0,
      proxy
    }
  })
  return { path, url, opts: { composeFiles: [compose(dir, '${SHIPLINE_PORT}')], runtime } }
}

const lost = r =>
  Object.values(r.failed).reduce((x, y) => x + y, 0) + Object.values(r.non2xx).reduce((x, y) => x + y, 0)

try {
  for (const v of ['v1', 'v2']) {
    buildAppImage({ tag: `${image}:${v}`, version: `${v}_${id}` })
    execFileSync('docker', ['push', '-q', `${image}:${v}`], { stdio: 'ignore' })
  }
  const table = []
  for (const label of ['recreate', 'nginx', 'haproxy', 'caddy', 'nginx warm', 'haproxy warm', 'caddy warm']) {
    if (ONLY && !new RegExp(ONLY).test(label)) continue
    const name = label.split(' ')[0]
    const s = await setup(label)
    let events = []
    const common = {
      ...sshFleet(sshd),
      path: s.path,
      healthTimeout: 60,
      lockTimeout: 60,
      log: quiet,
      stableSeconds: 1,
      autoRollback: true,
      keepReleases: 10,
      resolveDigest,
      onStep: e => events.push({ ...e, t: performance.now() }),
      ...s.opts
    }
    await deploy({ ...common, images: [`web=${image}:v1`], version: 'v1' })
    const rows = []
    for (let i = 0; i < RUNS; i++) {
      const r2 = await deploy({ ...common, images: [`web=${image}:v2`], version: `v2-${i}` })
      if (r2.status !== 'deployed') throw new Error(`${name}: deploy ${r2.status} ${r2.error}`)
      await new Promise(r => setTimeout(r, 1500))
      const load = startLoad({ url: `${s.url}/version`, rate: 100, keepAlive: true, maxMs: 120_000 })
      await new Promise(r => setTimeout(r, 1000))
      events = []
      const t0 = performance.now()
      const rb = await rollback({ ...common })
      const wall = performance.now() - t0
      await new Promise(r => setTimeout(r, 500))
      const res = await load.stop()
      if (rb.status !== 'rolled-back') throw new Error(`${name}: rollback ${rb.status} ${rb.error}`)
      const end = events.find(
        e => e.step === (name === 'recreate' ? 'health' : 'switch') && e.phase === 'end'
      )
      rows.push({ serving: end.t - t0, wall, lost: lost(res), sent: res.sent })
      if (STEPS)
        console.log(
          `${label} run ${i + 1}: ` +
            events
              .filter(e => e.phase === 'end')
              .map(e => {
                const start = events.find(x => x.step === e.step && x.phase === 'start')
                return `${e.step} ${((e.t - (start?.t ?? t0)) / 1000).toFixed(2)}s@${((e.t - t0) / 1000).toFixed(2)}`
              })
              .join(', ')
        )
    }
    removeProjects(s.path)
    table.push({
      name:
        name === 'recreate'
          ? 'recreate'
          : `blue-green, ${name}, previous slot kept ${label.endsWith('warm') ? 'warm' : 'stopped'}`,
      serving: median(rows.map(r => r.serving)),
      wall: median(rows.map(r => r.wall)),
      lost: rows.reduce((x, r) => x + r.lost, 0),
      sent: rows.reduce((x, r) => x + r.sent, 0)
    })
  }
  const base0 = table[0].serving
  console.log(`\nrollback, ${RUNS} runs each (medians), 100 requests/s keep-alive during each rollback`)
  console.log('| strategy | click to old release serving | vs recreate | rollback wall | lost requests |')
  console.log('|---|---|---|---|---|')
  for (const t of table)
    console.log(
      `| ${t.name} | ${(t.serving / 1000).toFixed(2)} s | ${(base0 / t.serving).toFixed(2)}× | ${(t.wall / 1000).toFixed(2)} s | ${t.lost} of ${t.sent} |`
    )
} finally {
  try {
    // the warm windows' timers on the host (each would find its state gone and exit)
    execFileSync('pkill', ['-f', base], { stdio: 'ignore' })
  } catch {
    /* none left */
  }
  for (const p of paths) removeProjects(p)
  for (const p of parts) await p.stop()
  await sshd.stop()
  await reg.stop()
  removeImages(`${image}:v1`, `${image}:v2`)
  rmSync(base, { recursive: true, force: true })
}

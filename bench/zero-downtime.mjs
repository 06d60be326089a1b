// Failed requests during releases, recreate vs blue-green, same run, same machine:
//
//   node bench/zero-downtime.mjs [--cycles 20] [--rate 50] [--drain 2]
//
// A real nginx (src/testkit/nginx.ts) proxies to the busybox sample app (src/testkit/images.ts); the load
// generator (src/testkit/load.ts) sends steady GET /version through nginx on loopback, a new connection
// per request, for the whole run of each strategy. One cycle = a deploy (v1 → v2) and a rollback
// (v2 → v1), each waited until healthy, so 20 cycles are 40 switches per strategy.
//
// - recreate: the code deploy-ssh runs per host today (ComposeRuntime.start = `docker-compose up -d` of the
//   release folder in the project, then ComposeRuntime.waitHealthy), nginx pointing at the one published port;
// - blue-green: src/lib/strategy BlueGreen.activate (idle slot up, healthy, upstream include rewritten,
//   nginx -t, reload, drain, old slot stopped).
//
// The app runs with `init: true` (tini as PID 1 passes SIGTERM on, so httpd stops at once, as a real app
// that handles SIGTERM does; without it `docker stop` waits its full 10 s grace).
//
// Both drive this machine's Docker engine through localRemote (no SSH, so the figures are about the
// switch, not the transport). The library is compiled on the fly from src/ with esbuild into build/.
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadTs, options, upperMedian } from './lib.mjs'

const { cycles: CYCLES, rate: RATE, drain: DRAIN } = options({ cycles: 20, rate: 50, drain: 2 })

const lib = await loadTs('zero-downtime', 'bench/zero-downtime-entry.ts')
const {
  BlueGreen,
  upstreamName,
  parseSlotPorts,
  ComposeRuntime,
  ReleaseStore,
  layout,
  buildAppImage,
  removeImages,
  startLoad,
  localRemote,
  freePort,
  startNginx,
  uniqueName
} = lib

const kind = (() => {
  try {
    execFileSync('docker', ['compose', 'version'], { stdio: 'ignore' })
    return 'v2'
  } catch {
    return 'v1'
  }
})()
const id = uniqueName('zd')
const repo = `shipline-bench/${id}`
const path = mkdtempSync(join(tmpdir(), 'shipline-zd-'))
const L = layout(path)
mkdirSync(`${L.state}/nginx`, { recursive: true })
const quiet = { info: () => undefined, warning: m => console.error('  warn: ' + m.split('\n')[0]) }

const release = (name, tag, ports) => {
  const rid = `20260101T000000000Z-${name}`
  mkdirSync(L.release(rid), { recursive: true })
  writeFileSync(
    join(L.release(rid), 'docker-compose.yml'),
    `services:\n  app:\n    image: ${repo}:${tag}\n    ports: ["127.0.0.1:${ports}:8080"]\n    mem_limit: 32m\n    init: true\n    network_mode: bridge\n`
  )
  return {
    id: rid,
    version: tag,
    files: ['docker-compose.yml'],
    env: false,
    images: {},
    services: ['app'],
    updated: ['app'],
    time: ''
  }
}

const cleanup = () => {
  for (const p of [L.project, `${L.project}-blue`, `${L.project}-green`]) {
    const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${p}`], {
      encoding: 'utf8'
    }).trim()
    if (ids) execFileSync('docker', ['rm', '-f', ...ids.split('\n')], { stdio: 'ignore' })
    try {
      execFileSync('docker', ['network', 'rm', `${p}_default`], { stdio: 'ignore' })
    } catch {
      /* none */
    }
  }
}

async function phase(name, nginx, setup, switchTo) {
  await setup()
  const load = startLoad({ url: `${nginx.url}/version`, rate: RATE })
  const t0 = Date.now()
  const switchMs = []
  for (let c = 0; c < CYCLES; c++) {
    for (const v of ['v2', 'v1']) {
      const s = Date.now()
      await switchTo(v)
      switchMs.push(Date.now() - s)
    }
    process.stderr.write('.')
  }
  const res = await load.stop()
  process.stderr.write('\n')
  return {
    name,
    ...res,
    wallMs: Date.now() - t0,
    switchMedianMs: upperMedian(switchMs),
    switches: switchMs.length
  }
}

const results = []
let nginx
try {
  // versions unique to the run: same content as another run's image would mean the same image id
  buildAppImage({ tag: `${repo}:v1`, version: `v1_${id}` })
  buildAppImage({ tag: `${repo}:v2`, version: `v2_${id}` })

  // recreate
  const port = await freePort()
  nginx = await startNginx({
    includeFile: `${L.state}/nginx/app.conf`,
    upstreamName: upstreamName('app'),
    initialPort: port
  })
  const rel = { v1: release('r-v1', 'v1', port), v2: release('r-v2', 'v2', port) }
  const store = new ReleaseStore(localRemote(), { path, log: quiet })
  await store.lock(30, 'bench')
  const ch = new ComposeRuntime(store)
  ch.kind = kind
  const rec = async v => {
    await ch.start(rel[v], undefined, '')
    const h = await ch.waitHealthy(rel[v], ['app'], 120, { stableSec: 1 })
    if (!h.ok) throw new Error(`recreate ${v}: ${h.result} ${h.state}`)
  }
  results.push(await phase('recreate', nginx, () => rec('v1'), rec))
  await store.finish()
  cleanup()
  await nginx.stop()
  rmSync(`${L.state}/nginx/app.conf`, { force: true })

  // blue-green
  const [a, b] = [await freePort(), await freePort()]
  nginx = await startNginx({ includeFile: `${L.state}/nginx/app.conf`, upstreamName: upstreamName('app') })
  const bgRel = {
    v1: release('bg-v1', 'v1', '${SHIPLINE_PORT}'),
    v2: release('bg-v2', 'v2', '${SHIPLINE_PORT}')
  }
  const bg = new BlueGreen(
    { remote: localRemote(), layout: L, compose: kind, log: quiet, label: 'local' },
    {
      ports: parseSlotPorts(`app=${a},${b}`),
      testCommand: nginx.testCommand,
      reloadCommand: nginx.reloadCommand,
      drainSeconds: DRAIN,
      minFreeMiB: 16
    },
    { healthTimeout: 120, stableSeconds: 1 }
  )
  const act = async v => {
    const r = await bg.activate(bgRel[v])
    if (!r.ok) throw new Error(`blue-green ${v}: ${r.result} ${r.state} ${r.nginx ?? ''}`)
  }
  results.push(await phase('blue-green', nginx, () => act('v1'), act))
} finally {
  cleanup()
  await nginx?.stop()
  removeImages(`${repo}:v1`, `${repo}:v2`)
  rmSync(path, { recursive: true, force: true })
}

console.log(
  `\n${CYCLES} cycles (deploy + rollback) per strategy, ${RATE} req/s through nginx, drain ${DRAIN}s, compose ${kind}\n`
)
console.log(
  '| strategy | requests | failed (no 2xx) | by kind | failed % | switch median | p99 latency | max latency |'
)
console.log('|---|---|---|---|---|---|---|---|')
for (const r of results) {
  const kinds =
    Object.entries({ ...r.non2xx, ...r.failed })
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ') || '-'
  console.log(
    `| ${r.name} | ${r.sent} | ${r.bad} | ${kinds} | ${((100 * r.bad) / r.sent).toFixed(2)}% | ${(r.switchMedianMs / 1000).toFixed(1)} s | ${r.latency.p99} ms | ${r.latency.max} ms |`
  )
}
const [rc, bgr] = results
if (rc && bgr) {
  console.log(
    `\nrecreate lost ${rc.bad} requests (${(rc.bad / rc.switches).toFixed(1)} per switch); blue-green lost ${bgr.bad}.`
  )
  console.log(
    `switch time blue-green / recreate: ${(bgr.switchMedianMs / rc.switchMedianMs).toFixed(2)}x (drain included)`
  )
}

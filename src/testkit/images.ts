/**
 * Test images built for real with the local Docker engine, FROM scratch with busybox (no base image can
 * be pulled here). The sample app serves /health, /readyz and /metrics through busybox httpd and has a
 * Docker HEALTHCHECK; `healthy: false` gives one whose healthcheck never passes (its /health answers 404).
 */
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find(p => existsSync(p)) ?? '/bin/busybox'

export interface AppImageOptions {
  /** full tag, e.g. 127.0.0.1:5000/team/app:abc */
  tag: string
  /** written to /version and into the metrics; makes each build's digest distinct */
  version: string
  healthy?: boolean
  /** false: no /readyz (404) while the Docker healthcheck still passes (a release only a probe catches) */
  ready?: boolean
  /** /metrics text instead of the valid default (e.g. broken exposition for the probe's validation) */
  metrics?: string
  /** port the app listens on inside the container (default 8080) */
  port?: number
  /** adds an incompressible filler layer of this many MiB (for benchmarks) */
  fillerMiB?: number
  /**
   * adds /cgi-bin/work (answers the version; every failEvery-th request 500; each sleeps delaySec) and
   * /cgi-bin/metrics (http_requests_total by code, http_request_duration_seconds histogram of the requests
   * to /cgi-bin/work, each observed at its configured delay: busybox has no sub-second clock)
   */
  work?: { failEvery?: number; delaySec?: number }
}

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

/** The CGI scripts of `work`: a byte appended per request to /tmp/obs/{ok,err} is the counter (no flock in busybox; O_APPEND writes do not interleave). */
function workScripts(version: string, o: NonNullable<AppImageOptions['work']>): Record<string, string> {
  const delay = o.delaySec ?? 0
  const observed = delay || 0.002
  const every = o.failEvery ?? 0
  const head = '#!/bin/sh\nd=/tmp/obs; mkdir -p $d; touch $d/ok $d/err\n'
  const work =
    head +
    (delay ? `sleep ${delay}\n` : '') +
    'n=$(( $(wc -c < $d/ok) + $(wc -c < $d/err) + 1 ))\n' +
    (every
      ? `if [ $((n % ${every})) = 0 ]; then printf x >> $d/err; printf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nboom\\n'; exit 0; fi\n`
      : '') +
    'printf x >> $d/ok\n' +
    `printf 'Content-Type: text/plain\\r\\n\\r\\n${version}\\n'\n`
  const buckets = BOUNDS.map(
    b => `http_request_duration_seconds_bucket{le="${b}"} $((n * ${observed <= b ? 1 : 0}))`
  )
  const metrics =
    head +
    'ok=$(wc -c < $d/ok); err=$(wc -c < $d/err); n=$((ok + err))\n' +
    "printf 'Content-Type: text/plain; version=0.0.4\\r\\n\\r\\n'\n" +
    'cat <<EOF\n' +
    [
      '# TYPE http_requests_total counter',
      'http_requests_total{code="200"} $ok',
      'http_requests_total{code="500"} $err',
      '# TYPE http_request_duration_seconds histogram',
      ...buckets,
      'http_request_duration_seconds_bucket{le="+Inf"} $n',
      `http_request_duration_seconds_sum $(awk "BEGIN { print $n * ${observed} }")`,
      'http_request_duration_seconds_count $n'
    ].join('\n') +
    '\nEOF\n'
  return { work, metrics }
}

/** Writes the build context of the sample app into dir and returns the Dockerfile path. */
export function writeAppContext(dir: string, opts: AppImageOptions): string {
  const port = opts.port ?? 8080
  const healthy = opts.healthy !== false
  mkdirSync(join(dir, 'www'), { recursive: true })
  copyFileSync(BUSYBOX, join(dir, 'busybox'))
  const metrics =
    '# HELP app_info Build information.\n' +
    '# TYPE app_info gauge\n' +
    `app_info{version="${opts.version}"} 1\n` +
    '# HELP app_requests_total Requests served.\n' +
    '# TYPE app_requests_total counter\n' +
    'app_requests_total 0\n'
  writeFileSync(join(dir, 'www', 'metrics'), opts.metrics ?? metrics)
  if (opts.ready !== false) writeFileSync(join(dir, 'www', 'readyz'), 'ok\n')
  writeFileSync(join(dir, 'www', 'version'), `${opts.version}\n`)
  // an unhealthy build has no /health (busybox httpd answers 404) so its healthcheck never passes
  if (healthy) writeFileSync(join(dir, 'www', 'health'), 'ok\n')
  if (opts.work) {
    mkdirSync(join(dir, 'www', 'cgi-bin'))
    for (const [name, text] of Object.entries(workScripts(opts.version, opts.work)))
      writeFileSync(join(dir, 'www', 'cgi-bin', name), text, { mode: 0o755 })
  }
  const lines = [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    'COPY www /www',
    'RUN mkdir -p /tmp'
  ]
  if (opts.fillerMiB) {
    lines.push(`RUN head -c ${opts.fillerMiB * 1024 * 1024} /dev/urandom > /filler.bin`)
  }
  lines.push(
    `ENV APP_VERSION=${opts.version} PORT=${port}`,
    `EXPOSE ${port}`,
    `CMD ["/bin/sh", "-c", "exec httpd -f -p $PORT -h /www"]`,
    `HEALTHCHECK --interval=1s --timeout=2s --start-period=1s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:${port}/health || exit 1`
  )
  const dockerfile = join(dir, 'Dockerfile')
  writeFileSync(dockerfile, lines.join('\n') + '\n')
  return dockerfile
}

/** Builds the sample app with the classic builder and returns the local image id. */
export function buildAppImage(opts: AppImageOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'shipline-app-'))
  try {
    writeAppContext(dir, opts)
    execFileSync('docker', ['build', '-q', '-t', opts.tag, dir], {
      env: { ...process.env, DOCKER_BUILDKIT: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    return execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', opts.tag], {
      encoding: 'utf8'
    }).trim()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Removes every tag and digest reference of `repo` (e.g. `127.0.0.1:5000/app`) from the local engine. By
 * reference only, never by image id: an identical build of another suite may share the id.
 */
export function removeRepository(repo: string): void {
  let listed = ''
  try {
    listed = execFileSync(
      'docker',
      ['images', '--digests', '--format', '{{.Repository}}:{{.Tag}} {{.Repository}}@{{.Digest}}', repo],
      { encoding: 'utf8' }
    )
  } catch {
    return
  }
  const refs = listed.split(/\s+/).filter(r => r && !r.endsWith(':<none>') && !r.endsWith('@<none>'))
  removeImages(...new Set(refs))
}

export function removeImages(...refs: string[]): void {
  if (refs.length === 0) return
  try {
    execFileSync('docker', ['rmi', '-f', ...refs], { stdio: 'ignore' })
  } catch {
    /* already gone */
  }
}

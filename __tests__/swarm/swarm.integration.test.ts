/**
 * target: swarm on a real single-node swarm of this machine's engine, over a real sshd: releases as
 * stacks (start-first, waiting for convergence), a release whose tasks never turn healthy put back to the
 * previous one, and a rollback two releases back by re-deploying that release's own files.
 *
 * Swarm mode changes the shared engine: the node becomes a swarm manager in beforeAll only when it is not
 * one already, and leaves in afterAll only when a shipline test made it one and no other run still uses it
 * (useSwarm/releaseSwarm). Compose keeps working on a swarm
 * node (the other suites run beside this one). No published ports: ingress routing needs iptables, which
 * is off here, so what a release serves is read inside its task's container. The stack override and the
 * .env handling without a swarm: stack.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { deploy, rollback } from '../../src/lib/deploy/index.js'
import { runtimeFactory } from '../../src/lib/strategy/host.js'
import { buildAppImage, removeImages } from '../../src/testkit/images.js'
import { sleep, uniqueName } from '../../src/testkit/net.js'
import { startRegistry, type TestRegistry } from '../../src/testkit/registry.js'
import { sshFleet, startSshd, type Sshd } from '../../src/testkit/sshd.js'
import { ledgerEvents } from '../strategy/helpers.js'

const docker = (...args: string[]): string => execFileSync('docker', args, { encoding: 'utf8' }).trim()

/**
 * Swarm mode for the length of a test file, safe when several runs of the suite overlap on one engine:
 * under a flock, the engine becomes a swarm only when it is not one (and that is noted), each test process
 * registers itself, and the last live one leaves the swarm, only when a shipline test made it. A swarm
 * someone else made is never left.
 */
const SWARM_DIR = '/tmp/shipline-swarm-users'
const swarmLocked = (script: string): void => {
  execFileSync('flock', [`${SWARM_DIR}.lock`, 'sh', '-c', script, 'sh', SWARM_DIR, String(process.pid)], {
    stdio: 'ignore'
  })
}
function useSwarm(): void {
  swarmLocked(`d=$1; mkdir -p "$d"
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null && touch "$d/made-by-shipline" || exit 1
fi
touch "$d/user-$2"`)
}
function releaseSwarm(): void {
  swarmLocked(`d=$1; rm -f "$d/user-$2"
for f in "$d"/user-*; do
  [ -e "$f" ] || continue
  kill -0 "\${f##*-}" 2>/dev/null && exit 0
  rm -f "$f"
done
if [ -e "$d/made-by-shipline" ]; then
  docker swarm leave --force >/dev/null 2>&1
  # the bridge swarm mode made takes one of the engine's few local address pools
  docker network rm docker_gwbridge >/dev/null 2>&1
  rm -f "$d/made-by-shipline"
fi
exit 0`)
}

describe('target: swarm on a single-node swarm', () => {
  let reg: TestRegistry
  let sshd: Sshd
  const path = mkdtempSync(join(tmpdir(), 'shipline-swarm-'))
  const stack = uniqueName('sl').replace(/[^a-z0-9-]/g, '')
  let image = ''
  const digests: Record<string, string> = {}
  const logs: string[] = []
  const log = { info: (m: string) => logs.push(m), warning: (m: string) => logs.push('WARN ' + m) }
  const compose = {
    name: 'docker-compose.yml',
    data: 'version: "3.8"\nservices:\n  app:\n    image: placeholder\n    environment:\n      GREETING: "${GREETING}"\n'
  }

  beforeAll(async () => {
    useSwarm()
    reg = await startRegistry({ auth: 'none' })
    sshd = await startSshd()
    image = `${reg.host}/${uniqueName('swarm').toLowerCase()}`
    for (const v of ['v1', 'v2', 'bad']) {
      buildAppImage({ tag: `${image}:${v}`, version: `${v}_${stack}`, healthy: v !== 'bad' })
      execFileSync('docker', ['push', '-q', `${image}:${v}`], { stdio: 'ignore' })
      const r = await fetch(`${reg.url}/v2/${image.slice(reg.host.length + 1)}/manifests/${v}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' }
      })
      digests[v] = `${image}@${r.headers.get('docker-content-digest')}`
    }
  }, 180_000)

  afterAll(async () => {
    try {
      docker('stack', 'rm', stack)
      for (
        let i = 0;
        i < 60 && docker('ps', '-aq', '--filter', `label=com.docker.stack.namespace=${stack}`);
        i++
      )
        await sleep(500)
      for (let i = 0; i < 20 && docker('network', 'ls', '-q', '--filter', `name=${stack}_`); i++)
        await sleep(500)
    } catch {
      /* nothing deployed */
    }
    await sshd?.stop()
    await reg?.stop()
    removeImages(...['v1', 'v2', 'bad'].map(v => `${image}:${v}`))
    rmSync(path, { recursive: true, force: true })
    releaseSwarm()
  }, 120_000)

  const served = (): string => {
    // the container of the task swarm wants running (an old task may still be stopping beside it)
    const tasks = docker(
      'service',
      'ps',
      '-q',
      '--no-trunc',
      '--filter',
      'desired-state=running',
      `${stack}_app`
    ).split('\n')
    expect(tasks.length).toBe(1)
    const ids = docker('ps', '-q', '--filter', `label=com.docker.swarm.task.id=${tasks[0]}`).split('\n')
    expect(ids.length).toBe(1)
    return docker('exec', ids[0], 'wget', '-qO-', 'http://127.0.0.1:8080/version').split('_')[0]
  }

  it('deploys releases as a stack through deploy(), puts the previous one back when the new one does not turn healthy, rolls back to any kept release', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shipline-swarm-ws-'))
    writeFileSync(join(dir, 'docker-compose.yml'), compose.data)
    const common = {
      ...sshFleet(sshd),
      path,
      healthTimeout: 90,
      lockTimeout: 60,
      log,
      stableSeconds: 1,
      composeFiles: [join(dir, 'docker-compose.yml')],
      autoRollback: true,
      keepReleases: 5,
      runtime: runtimeFactory({ strategy: 'recreate', target: 'swarm', stack }),
      resolveDigest: async () => {
        throw new Error('pinned by digest already')
      }
    }
    try {
      // 1. first release: the stack is created; convergence waits for the healthy task
      const r1 = await deploy({
        ...common,
        images: [`app=${digests.v1}`],
        version: 'v1',
        // quoted as Compose allows; a dotted key and a DOCKER_HOST of the app's must not break the deploy
        envFile: 'GREETING="hello v1"\nspring.profiles.active=prod\nDOCKER_HOST=tcp://127.0.0.1:9\n'
      })
      expect(r1.error).toBeUndefined()
      expect(r1.status).toBe('deployed')
      expect(served()).toBe('v1')
      const spec = JSON.parse(docker('service', 'inspect', `${stack}_app`, '--format', '{{json .Spec}}'))
      expect(spec.UpdateConfig.Order).toBe('start-first')
      expect(spec.TaskTemplate.ContainerSpec.Image).toBe(digests.v1)
      expect(spec.TaskTemplate.ContainerSpec.Env).toContain('GREETING=hello v1')

      // 2. second release: start-first update to v2 (the .env carried over)
      const r2 = await deploy({ ...common, images: [`app=${digests.v2}`], version: 'v2' })
      expect(r2.status).toBe('deployed')
      expect(served()).toBe('v2')

      // 3. a release that never turns healthy: the update pauses with v2 still running; v2's files go back
      const r3 = await deploy({ ...common, images: [`app=${digests.bad}`], version: 'bad' })
      expect(r3.status).toBe('rolled-back')
      expect(r3.hosts[0].logs).toMatch(/unhealthy|non-zero exit/)
      expect(served()).toBe('v2')
      expect(
        docker('service', 'inspect', `${stack}_app`, '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}')
      ).toBe(digests.v2)

      // 4. rollback two releases back, to v1, from its own release folder
      const rb = await rollback({ ...common, to: 'v1' })
      expect(rb.error).toBeUndefined()
      expect(rb.status).toBe('rolled-back')
      expect(served()).toBe('v1')
      expect(ledgerEvents(path)).toEqual(['deploy v1', 'deploy v2', 'auto-rollback v2', 'rollback v1'])
      // no temporary Docker config or recovery script left behind
      expect(execFileSync('sh', ['-c', `ls -A ${path}/.shipline/run`], { encoding: 'utf8' }).trim()).toBe('')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 300_000)

  it('refuses blue-green with swarm and a bad stack name before connecting', () => {
    expect(() => runtimeFactory({ strategy: 'blue-green', target: 'swarm' })).toThrow(/start-first already/)
    expect(() => runtimeFactory({ strategy: 'recreate', target: 'swarm', stack: 'a b' })).toThrow(
      /stack name/
    )
  })
})

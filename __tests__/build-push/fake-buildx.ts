/**
 * A stand-in `docker-buildx` CLI plugin for the buildx code path, since buildx cannot be installed here.
 * The real docker CLI finds it in the user's cli-plugins folder (through build-push's temporary config:
 * that link is part of what is tested) and runs it; it records its argv, answers `version` and `inspect`
 * (driver of choice), and carries out `build` with the real engine: a classic `docker build` with the same
 * tags, labels, build args, file and target, a real `docker push` of each tag for `--push`, and the
 * metadata file (`containerimage.digest` from the push) and iidfile buildx would write. `--output
 * type=image,name=…,push-by-digest=true,push=true` is carried out as a push of a scratch tag
 * (`<name>:fake-by-digest`); for each `--secret id=…,env=VAR` it records VAR's length (never its value)
 * in `<argvLog>.secrets`.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export function installFakeBuildx(userConfigDir: string, opts: { argvLog: string; driver: string }): void {
  const plugins = join(userConfigDir, 'cli-plugins')
  mkdirSync(plugins, { recursive: true })
  const script = `#!${process.execPath}
const { execFileSync } = require('node:child_process')
const { appendFileSync, writeFileSync } = require('node:fs')
const argv = process.argv.slice(2)
if (argv[0] === 'docker-cli-plugin-metadata') {
  console.log(JSON.stringify({ SchemaVersion: '0.1.0', Vendor: 'shipline test', Version: 'v0.0.0-fake', ShortDescription: 'fake buildx' }))
  process.exit(0)
}
appendFileSync(${JSON.stringify(opts.argvLog)}, JSON.stringify(argv) + '\\n')
const [, cmd, ...rest] = argv
if (cmd === 'version') { console.log('github.com/docker/buildx v0.0.0-fake shipline'); process.exit(0) }
if (cmd === 'inspect') { console.log('Name:   fake\\nDriver: ${opts.driver}\\n\\nNodes:\\nName: fake0\\n'); process.exit(0) }
if (cmd !== 'build') { console.error('fake buildx: unknown command ' + cmd); process.exit(1) }
const env = { ...process.env, DOCKER_BUILDKIT: '0' }
const pass = []
const tags = []
let push = false, metadata, iidfile, byDigest
const secretEnvs = {}
for (let i = 0; i < rest.length; i++) {
  const a = rest[i]
  if (['--file', '--label', '--build-arg', '--target'].includes(a)) pass.push(a, rest[++i])
  else if (a === '--tag') { tags.push(rest[++i]); pass.push('--tag', rest[i]) }
  else if (a === '--metadata-file') metadata = rest[++i]
  else if (a === '--iidfile') iidfile = rest[++i]
  else if (a === '--push') push = true
  else if (['--platform', '--cache-from', '--cache-to', '--ssh', '--build-context'].includes(a)) i++
  else if (a === '--secret') { const m = /env=([^,]+)/.exec(rest[++i]); if (m) secretEnvs[m[1]] = (process.env[m[1]] || '').length }
  else if (a === '--output') {
    const o = Object.fromEntries(rest[++i].split(',').map(kv => kv.split('=')))
    if (o.type !== 'image' || o['push-by-digest'] !== 'true' || o.push !== 'true') { console.error('fake buildx: unsupported output ' + rest[i]); process.exit(2) }
    byDigest = o.name
    tags.push(byDigest + ':fake-by-digest'); pass.push('--tag', byDigest + ':fake-by-digest')
    push = true
  }
  else if (a.startsWith('--provenance') || a === '--load') {}
  else if (a.startsWith('--')) { console.error('fake buildx: unknown flag ' + a); process.exit(2) }
  else pass.push(a)
}
const inherit = { env, stdio: ['ignore', 'inherit', 'inherit'] }
execFileSync('docker', ['build', ...(iidfile ? ['--iidfile', iidfile] : []), ...pass], inherit)
const meta = {}
if (push) {
  for (const t of tags) {
    const out = execFileSync('docker', ['push', t], { env, encoding: 'utf8' })
    const m = /digest: (sha256:[0-9a-f]{64})/.exec(out)
    if (m) meta['containerimage.digest'] = m[1]
  }
}
if (byDigest) meta['image.name'] = byDigest
writeFileSync(${JSON.stringify(opts.argvLog + '.secrets')}, JSON.stringify(secretEnvs))
if (metadata) writeFileSync(metadata, JSON.stringify(meta))
`
  writeFileSync(join(plugins, 'docker-buildx'), script)
  chmodSync(join(plugins, 'docker-buildx'), 0o755)
}

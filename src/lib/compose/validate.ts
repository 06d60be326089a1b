/**
 * Checks made before anything touches a host: the project path, image references, service names, the
 * version label. Every failure is a UserError that says how to fix the input.
 */
import { UserError } from '../errors.js'
import { formatReference, parseImageReference, type ImageReference } from '../registry/reference.js'

/** An absolute, normalized path of plain characters: no `..`, not `/`, nothing a shell would interpret. */
export function validateProjectPath(raw: string): string {
  const p = raw.trim().replace(/\/+$/, '')
  if (!p)
    throw new UserError(
      `Input 'path' is required: set it to the project directory on the host, e.g. 'path: /opt/app'.`
    )
  if (!p.startsWith('/'))
    throw new UserError(
      `Input 'path' must be absolute, got '${raw}'. Write it from the root, e.g. '/opt/app'.`
    )
  if (!/^[A-Za-z0-9._/@+-]+$/.test(p)) {
    throw new UserError(
      `Input 'path' may hold only letters, digits and . _ - + @ /, got '${raw}'. Choose a plain directory name such as '/opt/app'.`
    )
  }
  const segs = p.split('/').slice(1)
  if (segs.some(s => s === '' || s === '.' || s === '..')) {
    throw new UserError(
      `Input 'path' must be normalized (no '//', '.' or '..' segments), got '${raw}'. Write the real directory, e.g. '/opt/app'.`
    )
  }
  if (segs.some(s => s.startsWith('-')))
    throw new UserError(`Input 'path' has a segment starting with '-': '${raw}'. Rename that directory.`)
  const top = [
    'bin',
    'boot',
    'dev',
    'etc',
    'lib',
    'lib64',
    'proc',
    'root',
    'run',
    'sbin',
    'sys',
    'usr',
    'var',
    'tmp',
    'home',
    'opt',
    'srv',
    'mnt'
  ]
  if (segs.length === 1 && top.includes(segs[0])) {
    throw new UserError(
      `Input 'path' is a system directory ('${p}'). Use a folder of its own, e.g. '${p}/app'.`
    )
  }
  return p
}

export interface ImageRef extends ImageReference {
  /** as given */
  raw: string
  /** registry/repository, what goes in front of @sha256:… */
  name: string
}

/** Parses `[registry/]repo[:tag][@sha256:…]` with the registry module's grammar (UserError when invalid). */
function parseImageRef(raw: string, what = 'image'): ImageRef {
  const ref = parseImageReference(raw, { what })
  return {
    ...ref,
    raw: raw.trim(),
    name: formatReference({ registry: ref.registry, repository: ref.repository })
  }
}

const SERVICE_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/

export function validateServiceName(name: string, input: string): string {
  if (!SERVICE_RE.test(name)) {
    throw new UserError(
      `Input '${input}': '${name}' is not a Compose service name. Use the names under 'services:' in your compose file.`
    )
  }
  return name
}

/** `service=image-ref` lines → service → parsed ref. */
export function parseImagesInput(lines: string[]): Map<string, ImageRef> {
  const out = new Map<string, ImageRef>()
  for (const line of lines) {
    const i = line.indexOf('=')
    if (i <= 0)
      throw new UserError(
        `Input 'images': line '${line}' is not of the form service=image-ref, e.g. 'web=ghcr.io/acme/app:1.2.3'.`
      )
    const svc = validateServiceName(line.slice(0, i).trim(), 'images')
    if (out.has(svc))
      throw new UserError(`Input 'images' names service '${svc}' twice. Keep one line per service.`)
    out.set(svc, parseImageRef(line.slice(i + 1), `Input 'images': service '${svc}' image`))
  }
  return out
}

/** The version label: printable, no spaces or quotes, at most 128 characters. */
export function validateVersion(raw: string): string {
  const v = raw.trim()
  if (!v)
    throw new UserError(
      `Input 'version' is empty and no commit SHA is known. Set 'version', e.g. 'version: \${{ github.sha }}'.`
    )
  if (!/^[A-Za-z0-9._+:@/-]{1,128}$/.test(v)) {
    throw new UserError(
      `Input 'version' may hold only letters, digits and . _ + : @ / - (at most 128), got '${raw}'.`
    )
  }
  return v
}

/** A release id: sortable UTC time to the millisecond, then a short slug of the version. */
export function makeReleaseId(version: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('.', '').replace('Z', 'Z')
  const slug =
    version
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^[-.]+/, '')
      .slice(0, 24) || 'release'
  return `${stamp}-${slug}`
}

export const RELEASE_ID_RE = /^[0-9]{8}T[0-9]{9}Z-[A-Za-z0-9._-]{1,24}$/

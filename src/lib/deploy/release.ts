/** Builds a release locally (compose files, override, metadata) before any host is contacted. */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { parse, stringify } from 'yaml'
import { UserError } from '../errors.js'
import { OVERRIDE_FILE, META_FILE, ENV_FILE } from '../compose/layout.js'
import type { ReleaseMeta } from '../release/store.js'
import { parseImagesInput, validateServiceName, type ImageRef } from '../compose/validate.js'

export interface ComposeSet {
  files: { name: string; data: string }[]
  services: string[]
  version?: string
}

/** Reads and checks the local compose files: each parses, names services, and file names stay distinct. */
export function readComposeFiles(paths: string[]): ComposeSet {
  if (paths.length === 0)
    throw new UserError(
      `Input 'compose-file' is empty. Name your compose file, e.g. 'compose-file: docker-compose.yml'.`
    )
  const files: ComposeSet['files'] = []
  const services = new Set<string>()
  let version: string | undefined
  const used = new Set([OVERRIDE_FILE, META_FILE, ENV_FILE])
  for (const [i, p] of paths.entries()) {
    let data: string
    try {
      data = readFileSync(p, 'utf8')
    } catch {
      throw new UserError(
        `Input 'compose-file': cannot read '${p}'. Check the path (relative to the workspace) and that the repository is checked out.`
      )
    }
    let doc: unknown
    try {
      doc = parse(data)
    } catch (e) {
      throw new UserError(
        `Input 'compose-file': '${p}' is not valid YAML: ${String((e as Error).message).split('\n')[0]}`
      )
    }
    const svc = (doc as { services?: unknown } | null)?.services
    if (i === 0 && (typeof svc !== 'object' || svc === null || Array.isArray(svc))) {
      throw new UserError(
        `Input 'compose-file': '${p}' has no 'services:' map. shipline deploys Compose files with services.`
      )
    }
    if (svc && typeof svc === 'object')
      for (const k of Object.keys(svc)) services.add(validateServiceName(k, 'compose-file'))
    const v = (doc as { version?: unknown }).version
    if (i === 0 && v !== undefined) version = String(v)
    let name = basename(p).replace(/[^A-Za-z0-9._-]/g, '_')
    if (!/\.ya?ml$/.test(name)) name += '.yml'
    if (used.has(name) || name.startsWith('.')) name = `${i}-${name.replace(/^\.+/, '')}`
    used.add(name)
    files.push({ name, data })
  }
  return { files, services: [...services], version }
}

export interface ReleasePlanInput {
  compose: ComposeSet
  images: string[]
  services?: string[]
}

/** Checks `images` and `services` against the compose files; returns the parsed refs. */
export function checkServices(input: ReleasePlanInput): { images: Map<string, ImageRef>; updated: string[] } {
  const images = parseImagesInput(input.images)
  const known = new Set(input.compose.services)
  for (const svc of images.keys()) {
    if (!known.has(svc))
      throw new UserError(
        `Input 'images' names service '${svc}', which the compose files do not define. Known: ${[...known].join(', ')}.`
      )
  }
  const updated = (input.services ?? []).map(s => validateServiceName(s, 'services'))
  for (const s of updated) {
    if (!known.has(s))
      throw new UserError(
        `Input 'services' names '${s}', which the compose files do not define. Known: ${[...known].join(', ')}.`
      )
  }
  if (updated.length) {
    const excluded = [...images.keys()].filter(s => !updated.includes(s))
    if (excluded.length)
      throw new UserError(
        `Input 'images' names ${excluded.join(', ')}, which input 'services' does not update (${updated.join(', ')}): the release would record an image that does not run. Add ${excluded.length > 1 ? 'them' : 'it'} to 'services', or remove ${excluded.length > 1 ? 'them' : 'it'} from 'images'.`
      )
  }
  return { images, updated: updated.length ? updated : [...known] }
}

/** Pins every image to image@sha256:… (tags resolved through the registry). */
export async function pinImages(
  images: Map<string, ImageRef>,
  resolve?: (ref: ImageRef) => Promise<string>
): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  await Promise.all(
    [...images].map(async ([svc, ref]) => {
      let digest = ref.digest
      if (!digest) {
        if (!resolve)
          throw new UserError(
            `Input 'images': '${ref.raw}' has no digest and no registry client is set up to resolve it.`
          )
        digest = await resolve(ref)
        if (!/^sha256:[a-f0-9]{64}$/.test(digest))
          throw new Error(`registry answered a malformed digest '${digest}' for ${ref.raw}`)
      }
      out[svc] = `${ref.name}@${digest}`
    })
  )
  return Object.fromEntries(Object.entries(out).sort())
}

/** The override file: every pinned service's image, plus the compose file's version key when it has one. */
export function overrideFile(images: Record<string, string>, version?: string): string {
  const doc: Record<string, unknown> = {}
  if (version) doc.version = version
  doc.services = Object.fromEntries(Object.entries(images).map(([s, ref]) => [s, { image: ref }]))
  return (
    '# written by shipline: pins each service to the digest this release was made with\n' + stringify(doc)
  )
}

export function releaseMeta(p: {
  id: string
  version: string
  sha?: string
  actor?: string
  runUrl?: string
  compose: ComposeSet
  images: Record<string, string>
  updated: string[]
  env: boolean
}): ReleaseMeta {
  return {
    id: p.id,
    version: p.version,
    sha: p.sha,
    time: new Date().toISOString(),
    actor: p.actor,
    runUrl: p.runUrl,
    files: [...p.compose.files.map(f => f.name), OVERRIDE_FILE],
    env: p.env,
    images: p.images,
    services: p.compose.services,
    updated: p.updated
  }
}

/**
 * The one registry `registry-password` is for: the `registry` input, else the single registry of all
 * `images`. Images spanning several registries with a password and no `registry` are refused (the
 * password must not travel to a registry it is not for). Undefined: no credentials at all.
 */
export function credentialRegistry(input: {
  registry: string
  password: string
  images: ImageRef[]
}): string | undefined {
  if (!input.password) return undefined
  if (input.registry) return input.registry
  const all = [...new Set(input.images.map(r => r.registry))]
  if (all.length > 1)
    throw new UserError(
      `Input 'images' names images from several registries (${all.join(', ')}) and 'registry-password' is set without 'registry': say which registry the password is for, e.g. 'registry: ${all[0]}'. Images from the others are pulled without credentials.`
    )
  return all[0]
}

import * as core from '@actions/core'
import { list, secret, str } from '../action/inputs.js'
import { runAction } from '../action/run.js'
import { UserError } from '../lib/errors.js'
import { namesRegistry, parseImageReference, type ImageReference } from '../lib/registry/reference.js'
import { RegistryClient } from '../lib/registry/client.js'
import { promote } from '../lib/registry/promote.js'

function image(name: string, raw: string, registry: string): ImageReference {
  const withRegistry = registry && !namesRegistry(raw) ? `${registry}/${raw}` : raw
  const ref = parseImageReference(withRegistry, { lowercase: true, what: name })
  if (ref.tag || ref.digest) {
    throw new UserError(
      `Input '${name}' must be a repository without a tag or digest ('${raw}'); put the tag in 'from' or 'to-tags'.`
    )
  }
  if (withRegistry.toLowerCase() !== withRegistry)
    core.notice(
      `${name}: '${raw}' lowercased to '${ref.registry}/${ref.repository}' (image names must be lowercase).`
    )
  if (registry && ref.registry !== registry.toLowerCase()) {
    throw new UserError(
      `Input '${name}' (${ref.registry}) is on another registry than 'registry' (${registry}): promote works inside one registry.`
    )
  }
  return ref
}

await runAction(async () => {
  const registryInput = str('registry')
  const imageInput = str('image')
  if (!imageInput)
    throw new UserError("Input 'image' is required: the source repository, e.g. 'image: ghcr.io/acme/app'.")
  const src = image('image', imageInput, registryInput)
  const dst = image(
    'to-image',
    str('to-image', `${src.registry}/${src.repository}`),
    registryInput || src.registry
  )
  const username = str('registry-username')
  const password = secret('registry-password')
  const from = str('from')
  const toTags = list('to-tags')

  const client = new RegistryClient({
    registry: src.registry,
    username,
    password,
    log: line => core.debug(line)
  })
  core.startGroup(
    `promote ${src.registry}/${src.repository}:${from} → ${dst.repository}:${toTags.join(', ')}`
  )
  let result
  try {
    result = await promote({
      client,
      registry: src.registry,
      sourceRepository: src.repository,
      from,
      targetRepository: dst.repository,
      toTags,
      log: line => core.info(line)
    })
  } finally {
    core.endGroup()
  }

  core.setOutput('digest', result.digest)
  core.setOutput('source-ref', result.sourceRef)
  core.setOutput('target-refs', result.targets.map(t => t.ref).join('\n'))
  core.setOutput('previous-digest', result.previousDigest)
  core.setOutput('changed', String(result.changed))

  const short = (d: string | null): string => (d ? `\`${d.slice(0, 19)}…\`` : '—')
  const rows = result.targets.map(t => [`\`${t.ref}\``, short(t.before), short(t.after), t.action])
  core.summary
    .addHeading('promote', 3)
    .addRaw(
      `Source \`${src.registry}/${src.repository}:${from}\` = \`${result.digest}\` (${result.mediaType}`
    )
    .addRaw(result.platforms.length ? `; platforms ${result.platforms.join(', ')})` : ')', true)
    .addTable([
      [
        { data: 'target', header: true },
        { data: 'before', header: true },
        { data: 'now', header: true },
        { data: 'result', header: true }
      ],
      ...rows
    ])
    .addRaw(
      result.changed
        ? `Blobs mounted: ${result.blobsMounted}, uploaded: ${result.blobsUploaded}; child manifests copied: ${result.manifestsCopied}` +
            (result.signatures.length ? `; carried ${result.signatures.join(', ')}` : '') +
            '.'
        : 'Every target already pointed at this digest: nothing was written.',
      true
    )
  await core.summary.write()
  core.info(
    result.changed
      ? `promoted ${result.digest} to ${result.targets.map(t => t.tag).join(', ')} (${client.stats.requests} requests, ${client.stats.bytesIn + client.stats.bytesOut} bytes)`
      : `every target already points at ${result.digest}: changed=false`
  )
})

/**
 * promote: gives an already-pushed image new tags registry-side (src/lib/registry/promote.ts), or, with
 * `merge`, makes one OCI index of single-platform images (src/lib/registry/merge.ts); sets the outputs and
 * writes the summary (src/lib/promote/summary.ts). Launched by ./index.ts; importing this module runs nothing.
 */
import * as core from '@actions/core'
import { RegistryClient } from '../lib/registry/client.js'
import { merge } from '../lib/registry/merge.js'
import { promote, type PromoteResult } from '../lib/registry/promote.js'
import { mergeSummary, promoteLine, promoteSummary } from '../lib/promote/summary.js'
import { getInputs, type PromoteInputs } from './inputs.js'

async function runMerge(i: PromoteInputs, client: RegistryClient): Promise<PromoteResult> {
  const { target: dst } = i
  const tags = [...(i.sha ? [i.sha] : []), ...i.toTags]
  const result = await core.group(
    `merge ${i.merge.length} images → ${dst.registry}/${dst.repository}:${tags.join(', ')}`,
    () =>
      merge({
        client,
        registry: dst.registry,
        children: i.merge,
        targetRepository: dst.repository,
        tags,
        log: line => core.info(line)
      })
  )
  await core.summary.addRaw(mergeSummary(result)).write()
  return result
}

async function runPromote(i: PromoteInputs, client: RegistryClient): Promise<PromoteResult> {
  const { source: src, target: dst, from, toTags } = i
  const result = await core.group(
    `promote ${src.registry}/${src.repository}:${from} → ${dst.repository}:${toTags.join(', ')}`,
    () =>
      promote({
        client,
        registry: src.registry,
        sourceRepository: src.repository,
        from,
        targetRepository: dst.repository,
        toTags,
        log: line => core.info(line)
      })
  )
  await core.summary.addRaw(promoteSummary(`${src.registry}/${src.repository}`, from, result)).write()
  return result
}

export async function run(): Promise<void> {
  const inputs = getInputs()
  for (const n of inputs.notices) core.notice(n)

  const client = new RegistryClient({
    registry: inputs.source.registry,
    username: inputs.username,
    password: inputs.password,
    log: line => core.debug(line)
  })
  const result = inputs.merge.length > 0 ? await runMerge(inputs, client) : await runPromote(inputs, client)

  core.setOutput('digest', result.digest)
  core.setOutput('source-ref', result.sourceRef)
  core.setOutput('target-refs', result.targets.map(t => t.ref).join('\n'))
  core.setOutput('previous-digest', result.previousDigest)
  core.setOutput('changed', String(result.changed))
  core.setOutput('platforms', result.platforms.join('\n'))
  core.setOutput('blob-bytes-uploaded', String(result.blobBytesUploaded))
  core.setOutput('referrers-copied', String(result.referrersCopied))
  core.info(promoteLine(result, client.stats))
}

/**
 * promote: gives an already-pushed image new tags registry-side (src/lib/registry/promote.ts), sets the
 * outputs and writes the summary (src/lib/promote/summary.ts). Launched by ./index.ts; importing this
 * module runs nothing.
 */
import * as core from '@actions/core'
import { RegistryClient } from '../lib/registry/client.js'
import { promote } from '../lib/registry/promote.js'
import { promoteLine, promoteSummary } from '../lib/promote/summary.js'
import { getInputs } from './inputs.js'

export async function run(): Promise<void> {
  const { source: src, target: dst, from, toTags, username, password, notices } = getInputs()
  for (const n of notices) core.notice(n)

  const client = new RegistryClient({
    registry: src.registry,
    username,
    password,
    log: line => core.debug(line)
  })
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

  core.setOutput('digest', result.digest)
  core.setOutput('source-ref', result.sourceRef)
  core.setOutput('target-refs', result.targets.map(t => t.ref).join('\n'))
  core.setOutput('previous-digest', result.previousDigest)
  core.setOutput('changed', String(result.changed))
  await core.summary.addRaw(promoteSummary(`${src.registry}/${src.repository}`, from, result)).write()
  core.info(promoteLine(result, client.stats))
}

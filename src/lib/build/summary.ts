/** The job summary of build-push, as Markdown. */
import type { BuildPushResult } from './run.js'

const code = (s: string): string => `\`${s.replace(/`/g, "'")}\``

export function summaryMarkdown(r: BuildPushResult, notes: string[] = []): string {
  const secs = (r.durationMs / 1000).toFixed(1)
  const rows: [string, string][] = [
    ['image', code(r.image)],
    ['digest', r.digest ? code(r.digest) : '— (nothing pushed)'],
    ['ref', r.ref ? code(r.ref) : '—'],
    ['tags', r.byDigest ? '— (pushed by digest, no tag)' : r.tags.map(code).join('<br>')],
    ['image id', r.imageId ? code(r.imageId) : '—'],
    ...(r.attestationDigest
      ? [['provenance', `${code(r.attestationDigest)} (referrer of the digest)`] as [string, string]]
      : []),
    ['builder', r.builder],
    ['duration', `${secs} s`]
  ]
  const lines = [
    r.pushed ? `### build-push: pushed ${code(r.ref)}` : `### build-push: built ${code(r.shaTag)}, nothing was pushed (push: false)`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    ''
  ]
  if (r.byDigest) {
    lines.push("Pushed by digest with no tag, digest read back from the registry: merge the digests of the platform builds with promote's `merge`.", '')
  } else if (r.pushed) lines.push(`Digest read back from the registry for every tag (${Object.keys(r.tagDigests).length} checked).`, '')
  for (const n of notes) lines.push(`> ${n}`, '')
  return lines.join('\n')
}

/** The job summary of a failed build-push: what it was building (as far as known) and the one-line reason. */
export function failureMarkdown(image: string | undefined, tags: string[], message: string): string {
  return [
    `### build-push failed${image ? `: ${code(image)}` : ''}`,
    '',
    `> ${message.split('\n')[0]}`,
    '',
    ...(tags.length ? [`Tags it was to push: ${tags.map(code).join(', ')}. Nothing was output; see the log for details.`, ''] : [])
  ].join('\n')
}

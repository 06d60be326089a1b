/**
 * promote's job summary: a heading, the source line (or, for merge, the images of the index), one table
 * row per target tag, and what was written. HTML the way @actions/core's summary builder writes it (the
 * same markup the action wrote inline before).
 */
import type { MergeResult } from '../registry/merge.js'
import type { PromoteResult } from '../registry/promote.js'

const short = (d: string | null): string => (d ? `\`${d.slice(0, 19)}…\`` : '—')
const tag = (name: string, content: string): string => `<${name}>${content}</${name}>`
const table = (header: string[], rows: string[][]): string =>
  tag(
    'table',
    [header.map(h => tag('th', h)).join(''), ...rows.map(r => r.map(c => tag('td', c)).join(''))]
      .map(r => tag('tr', r))
      .join('')
  )

/** The target table and the line saying what was written. */
function targetsAndWrites(result: PromoteResult): string {
  const rows = result.targets.map(t => [`\`${t.ref}\``, short(t.before), short(t.after), t.action])
  const written = result.changed
    ? `Blobs mounted: ${result.blobsMounted}, uploaded: ${result.blobsUploaded} (${result.blobBytesUploaded} bytes); child manifests copied: ${result.manifestsCopied}` +
      (result.signatures.length ? `; carried ${result.signatures.join(', ')}` : '') +
      (result.referrersCopied ? `; referrers copied: ${result.referrersCopied}` : '') +
      '.'
    : 'Every target already pointed at this digest: nothing was written.'
  return `${table(['target', 'before', 'now', 'result'], rows)}\n${written}\n`
}

export function promoteSummary(source: string, from: string, result: PromoteResult): string {
  return (
    `${tag('h3', 'promote')}\n` +
    `Source \`${source}:${from}\` = \`${result.digest}\` (${result.mediaType}` +
    `${result.platforms.length ? `; platforms ${result.platforms.join(', ')})` : ')'}\n` +
    targetsAndWrites(result)
  )
}

export function mergeSummary(result: MergeResult): string {
  const rows = result.children.map(c => [c.platform, `\`${c.ref}\``, String(c.size)])
  return (
    `${tag('h3', 'promote: merge')}\n` +
    `Index \`${result.sourceRef}\` (${result.mediaType}) of ${result.children.length} images:\n` +
    `${table(['platform', 'image', 'manifest bytes'], rows)}\n` +
    targetsAndWrites(result)
  )
}

/** The step's closing log line. */
export function promoteLine(
  result: PromoteResult,
  stats: { requests: number; bytesIn: number; bytesOut: number }
): string {
  return result.changed
    ? `promoted ${result.digest} to ${result.targets.map(t => t.tag).join(', ')} (${stats.requests} requests, ${stats.bytesIn + stats.bytesOut} bytes, ${result.blobBytesUploaded} blob bytes uploaded)`
    : `every target already points at ${result.digest}: changed=false`
}

/**
 * promote's job summary: a heading, the source line, one table row per target tag, and what was written.
 * HTML the way @actions/core's summary builder writes it (the same markup the action wrote inline before).
 */
import type { PromoteResult } from '../registry/promote.js'

const short = (d: string | null): string => (d ? `\`${d.slice(0, 19)}…\`` : '—')
const tag = (name: string, content: string): string => `<${name}>${content}</${name}>`

export function promoteSummary(source: string, from: string, result: PromoteResult): string {
  const header = ['target', 'before', 'now', 'result'].map(h => tag('th', h)).join('')
  const rows = result.targets.map(t =>
    [`\`${t.ref}\``, short(t.before), short(t.after), t.action].map(c => tag('td', c)).join('')
  )
  const written = result.changed
    ? `Blobs mounted: ${result.blobsMounted}, uploaded: ${result.blobsUploaded}; child manifests copied: ${result.manifestsCopied}` +
      (result.signatures.length ? `; carried ${result.signatures.join(', ')}` : '') +
      '.'
    : 'Every target already pointed at this digest: nothing was written.'
  return (
    `${tag('h3', 'promote')}\n` +
    `Source \`${source}:${from}\` = \`${result.digest}\` (${result.mediaType}` +
    `${result.platforms.length ? `; platforms ${result.platforms.join(', ')})` : ')'}\n` +
    `${tag('table', [header, ...rows].map(r => tag('tr', r)).join(''))}\n` +
    `${written}\n`
  )
}

/** The step's closing log line. */
export function promoteLine(
  result: PromoteResult,
  stats: { requests: number; bytesIn: number; bytesOut: number }
): string {
  return result.changed
    ? `promoted ${result.digest} to ${result.targets.map(t => t.tag).join(', ')} (${stats.requests} requests, ${stats.bytesIn + stats.bytesOut} bytes)`
    : `every target already points at ${result.digest}: changed=false`
}

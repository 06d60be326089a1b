/**
 * The one worker pool of the library: `limit` workers take the items in order; results come back in
 * item order. `stop()` (checked before each item is taken) ends the run early: items not yet started are
 * skipped and their result slots stay undefined.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  opts: { stop?: () => boolean } = {}
): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length && !opts.stop?.()) {
      const i = next++
      out[i] = await fn(items[i], i)
    }
  }
  const n = Math.max(1, Math.min(Math.floor(limit) || 1, items.length))
  await Promise.all(Array.from({ length: items.length ? n : 0 }, worker))
  return out
}

/**
 * A fixed-size pool. Items start in the given priority order (longest expected first, so the tail of the
 * run is not one long test alone); results come back in input order whatever order they finished in.
 */
export async function runPool<T, R>(
  items: T[],
  slots: number,
  priority: (item: T) => number,
  worker: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const order = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => priority(b.item) - priority(a.item) || a.index - b.index);
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < order.length) {
      const { item, index } = order[next++]!;
      results[index] = await worker(item, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(slots, items.length)) }, lane));
  return results;
}

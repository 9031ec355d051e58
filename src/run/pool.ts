/**
 * A pool of workers. Items start in the given priority order (longest expected first, so the tail of the
 * run is not one long test alone); results come back in input order whatever order they finished in.
 * The number of slots may change while it runs (a run that falls back from KVM to TCG can afford fewer
 * VMs): it is read whenever an item is about to start, and running items are never interrupted.
 */
export async function runPool<T, R>(
  items: T[],
  slots: number | (() => number),
  priority: (item: T) => number,
  worker: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const limit = typeof slots === 'number' ? () => slots : slots;
  const order = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => priority(b.item) - priority(a.item) || a.index - b.index);
  const results = new Array<R>(items.length);
  let next = 0;
  let running = 0;
  return new Promise<R[]>((resolve, reject) => {
    let failed = false;
    const fill = () => {
      if (failed) return;
      if (next >= order.length && running === 0) {
        resolve(results);
        return;
      }
      while (next < order.length && running < Math.max(1, limit())) {
        const { item, index } = order[next++]!;
        running++;
        worker(item, index).then(
          (r) => {
            results[index] = r;
            running--;
            fill();
          },
          (err: unknown) => {
            failed = true;
            reject(err instanceof Error ? err : new Error(String(err)));
          },
        );
      }
    };
    fill();
  });
}

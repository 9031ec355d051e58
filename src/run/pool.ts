/**
 * A pool of workers. Items start in the given priority order (longest expected first, so the tail of the
 * run is not one long test alone); results come back in input order whatever order they finished in.
 * The number of slots may change while it runs (a run that falls back from KVM to TCG can afford fewer
 * VMs): it is read whenever an item is about to start, and running items are never interrupted. A worker
 * may hand its item back (`requeue`): it then waits, ahead of the items not started yet, for a slot
 * under the current limit (a test whose KVM attempt was stopped reruns under TCG's smaller pool).
 */
export class Requeue<T> {
  constructor(readonly item: T) {}
}

export const requeue = <T>(item: T): Requeue<T> => new Requeue(item);

export async function runPool<T, R>(
  items: T[],
  slots: number | (() => number),
  priority: (item: T) => number,
  worker: (item: T, index: number) => Promise<R | Requeue<T>>,
): Promise<R[]> {
  const limit = typeof slots === 'number' ? () => slots : slots;
  const queue = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => priority(b.item) - priority(a.item) || a.index - b.index);
  const results = new Array<R>(items.length);
  let running = 0;
  return new Promise<R[]>((resolve, reject) => {
    let failed = false;
    const fill = () => {
      if (failed) return;
      if (queue.length === 0 && running === 0) {
        resolve(results);
        return;
      }
      while (queue.length > 0 && running < Math.max(1, limit())) {
        const { item, index } = queue.shift()!;
        running++;
        worker(item, index).then(
          (r) => {
            running--;
            if (r instanceof Requeue) queue.unshift({ item: r.item as T, index });
            else results[index] = r;
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

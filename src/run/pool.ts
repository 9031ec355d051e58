/**
 * A pool of workers. Items start in the given priority order (longest expected first, so the tail of the
 * run is not one long test alone); results come back in input order whatever order they finished in.
 * The number of slots may change while it runs (a run that falls back from KVM to TCG can afford fewer
 * VMs): it is read whenever an item is about to start, and running items are never interrupted. A worker
 * may hand its item back (`requeue`): it then waits, ahead of the items not started yet, for a slot
 * under the current limit (a test whose KVM attempt was stopped reruns under TCG's smaller pool).
 *
 * A worker that throws is one item's failure, not the pool's: `recover` turns it into that item's result
 * and the others go on. Without `recover` (or when it throws too) nothing new starts, and the pool rejects
 * only once every running worker has ended: a worker may hold a VM, which must not be left running.
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
  recover?: (err: unknown, item: T, index: number) => R,
): Promise<R[]> {
  const limit = typeof slots === 'number' ? () => slots : slots;
  const queue = items
    .map((item, index) => ({ item, index }))
    .sort((a, b) => priority(b.item) - priority(a.item) || a.index - b.index);
  const results = new Array<R>(items.length);
  let running = 0;
  return new Promise<R[]>((resolve, reject) => {
    let failure: Error | undefined;
    const fill = () => {
      if (running === 0 && (failure || queue.length === 0)) {
        if (failure) reject(failure);
        else resolve(results);
        return;
      }
      while (!failure && queue.length > 0 && running < Math.max(1, limit())) {
        const { item, index } = queue.shift()!;
        running++;
        // A worker that throws before its first await still counts as started and ended.
        Promise.resolve()
          .then(() => worker(item, index))
          .then(
            (r) => {
              if (r instanceof Requeue) queue.unshift({ item: r.item as T, index });
              else results[index] = r;
            },
            (err: unknown) => {
              try {
                if (!recover) throw err;
                results[index] = recover(err, item, index);
              } catch (e) {
                failure ??= e instanceof Error ? e : new Error(String(e));
              }
            },
          )
          .finally(() => {
            running--;
            fill();
          });
      }
    };
    fill();
  });
}

/**
 * Splits the selected tests into N shards, one per CI job. Pure and deterministic: the same tests and
 * durations give the same plan on every machine, so a plan can be recomputed or passed around.
 * Longest-processing-time first onto the least loaded shard (ties by name), which keeps the longest
 * shard within 4/3 of the optimum; without durations the costs are the timeouts (equal timeouts give
 * a round-robin by name).
 */
import { createHash } from 'node:crypto';
import { expectedSeconds, type Durations } from './durations.ts';
import { UserError } from '../util/errors.ts';
import {
  AUTO_SHARD_SECONDS,
  MAX_SHARDS,
  SHARD_PLAN_VERSION,
  type Shard,
  type ShardPlan,
} from '../config/shard-plan.ts';

export function planShards(
  tests: { name: string; timeout: number }[],
  count: number | 'auto',
  durations?: Durations,
): ShardPlan {
  if (tests.length === 0) throw new UserError('no tests selected: nothing to shard');
  const known = durations && tests.some((t) => durations[t.name] !== undefined);
  const cost = expectedSeconds(tests, known ? durations : undefined);
  const totalCost = [...cost.values()].reduce((a, b) => a + b, 0);
  const wanted =
    count === 'auto'
      ? known
        ? Math.ceil(totalCost / AUTO_SHARD_SECONDS)
        : Math.min(4, tests.length)
      : count;
  // Never an empty shard: it would be a job that boots nothing.
  const n = Math.max(1, Math.min(wanted, tests.length, MAX_SHARDS));
  const shards: Shard[] = Array.from({ length: n }, (_, i) => ({
    index: i + 1,
    tests: [],
    plannedSeconds: 0,
  }));
  const order = [...tests].sort(
    (a, b) => cost.get(b.name)! - cost.get(a.name)! || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  for (const t of order) {
    const target = shards.reduce((best, s) => (s.plannedSeconds < best.plannedSeconds ? s : best));
    target.tests.push(t.name);
    target.plannedSeconds += cost.get(t.name)!;
  }
  for (const s of shards) {
    s.tests.sort();
    s.plannedSeconds = Math.round(s.plannedSeconds * 10) / 10;
  }
  const used = known
    ? Object.fromEntries(
        tests.filter((t) => durations[t.name] !== undefined).map((t) => [t.name, durations[t.name]!]),
      )
    : undefined;
  const id = createHash('sha256')
    .update(JSON.stringify(shards.map((s) => s.tests)))
    .digest('hex')
    .slice(0, 12);
  return {
    version: SHARD_PLAN_VERSION,
    id,
    total: n,
    basis: known ? 'durations' : 'timeouts',
    shards,
    ...(used ? { durations: used } : {}),
  };
}

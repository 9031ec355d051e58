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

export const SHARD_PLAN_VERSION = 1;
/** `auto` aims at shards of about this many VM-seconds each. */
export const AUTO_SHARD_SECONDS = 600;
export const MAX_SHARDS = 64;

export interface Shard {
  /** 1-based. */
  index: number;
  tests: string[];
  /** Sum of the expected VM-seconds of its tests. */
  plannedSeconds: number;
}

export interface ShardPlan {
  version: typeof SHARD_PLAN_VERSION;
  /** Digest of the assignment: shard results carry it, so a merge never mixes two plans' shards. */
  id: string;
  total: number;
  /** What the costs came from. */
  basis: 'durations' | 'timeouts';
  shards: Shard[];
  /** The known durations the plan used (shard jobs start their longest tests first by them). */
  durations?: Durations;
}

export function parseShardCount(v: string, field = '--shards'): number | 'auto' {
  if (v === 'auto') return 'auto';
  if (/^\d+$/.test(v) && Number(v) >= 1 && Number(v) <= MAX_SHARDS) return Number(v);
  throw new UserError(`${field}: "${v}" must be auto or a whole number from 1 to ${MAX_SHARDS}`);
}

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

/** Reads a plan given as JSON text (file or workflow output), checking its shape. */
export function parseShardPlan(text: string, origin: string): ShardPlan {
  let p: Partial<ShardPlan>;
  try {
    p = JSON.parse(text) as Partial<ShardPlan>;
  } catch (e) {
    throw new UserError(
      `${origin}: not JSON (${(e as Error).message}); pass the output of \`itest plan --shards N --json\``,
    );
  }
  const ok =
    p.version === SHARD_PLAN_VERSION &&
    typeof p.id === 'string' &&
    typeof p.total === 'number' &&
    Array.isArray(p.shards) &&
    p.shards.length === p.total &&
    p.shards.every(
      (s, i) => s.index === i + 1 && Array.isArray(s.tests) && s.tests.every((n) => typeof n === 'string'),
    ) &&
    (p.durations === undefined ||
      (typeof p.durations === 'object' && Object.values(p.durations).every((v) => typeof v === 'number')));
  if (!ok)
    throw new UserError(
      `${origin}: not a shard plan of version ${SHARD_PLAN_VERSION} (fields version, id, total, shards[{index, tests, plannedSeconds}]); pass the output of \`itest plan --shards N --json\``,
    );
  return p as ShardPlan;
}

export function shardOf(plan: ShardPlan, index: number, origin: string): Shard {
  const s = plan.shards[index - 1];
  if (!s)
    throw new UserError(`${origin}: shard ${index} does not exist; the plan has shards 1 to ${plan.total}`);
  return s;
}

/** What a run of one shard needs: its tests, what to record in results.json, and the plan's durations. */
export function selectShard(
  plan: ShardPlan,
  index: number,
  origin: string,
): {
  tests: string[];
  shard: { planId: string; index: number; total: number; plannedSeconds: number };
  durations?: Durations;
} {
  const s = shardOf(plan, index, origin);
  return {
    tests: s.tests,
    shard: { planId: plan.id, index: s.index, total: plan.total, plannedSeconds: s.plannedSeconds },
    ...(plan.durations ? { durations: plan.durations } : {}),
  };
}

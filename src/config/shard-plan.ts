/**
 * The shard plan as a file format: what `itest plan --json` writes and `itest run --plan --shard` and the
 * action read, and how one shard's part is taken out of it. Pure. (shard/plan-shards.ts makes plans.)
 */
import type { Durations } from './run-config.ts';
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

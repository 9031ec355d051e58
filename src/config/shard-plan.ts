/**
 * The shard plan as a file format: what `itest plan --json` writes and `itest run --plan --shard` and the
 * action read, and how one shard's part is taken out of it. Pure. (shard/plan-shards.ts makes plans.)
 */
import { Ajv } from 'ajv';
import planSchema from '../../schemas/shard-plan.schema.json' with { type: 'json' };
import type { Durations } from './run-config.ts';
import { checkSchema, parseJsonInput } from './input-file.ts';
import { INPUT_LIMITS } from './settings.ts';
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

const validatePlan = new Ajv({ strict: false }).compile(planSchema);

/**
 * Reads a plan given as JSON text (file or workflow output): schema (schemas/shard-plan.schema.json), then
 * what a schema cannot say: one shard per index in order, as many as `total`, each test in one shard.
 */
export function parseShardPlan(text: string, origin: string): ShardPlan {
  const hint = 'pass the output of `itest plan --shards N --json`';
  if (text.length > INPUT_LIMITS.planBytes)
    throw new UserError(
      `${origin}: ${text.length} characters, more than the ${INPUT_LIMITS.planBytes} bytes of a shard plan itest reads; ${hint}`,
    );
  const notA = `not a shard plan of version ${SHARD_PLAN_VERSION}`;
  const p = checkSchema<ShardPlan>(validatePlan, parseJsonInput(text, origin, hint), origin, notA, hint);
  const wrong = (field: string, message: string) =>
    new UserError(`${origin}: ${notA}: ${field}: ${message}; ${hint}`);
  if (p.shards.length !== p.total)
    throw wrong('shards', `${p.shards.length} shards, but total says ${p.total}`);
  const shardOfTest = new Map<string, number>();
  let tests = 0;
  p.shards.forEach((s, i) => {
    if (s.index !== i + 1)
      throw wrong(`shards[${i}].index`, `is ${s.index}, expected ${i + 1} (shards in order)`);
    tests += s.tests.length;
    for (const name of s.tests) {
      const other = shardOfTest.get(name);
      if (other !== undefined)
        throw wrong(`shards[${i}].tests`, `test ${name} is in shard ${other} and in shard ${s.index}`);
      shardOfTest.set(name, s.index);
    }
  });
  if (tests > INPUT_LIMITS.tests)
    throw wrong('shards', `${tests} tests, more than the ${INPUT_LIMITS.tests} itest runs`);
  return p;
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
  // An empty list of tests selects every test: an empty shard must run nothing instead (planShards never
  // makes one, and a plan read from a file has none: the schema refuses it).
  if (s.tests.length === 0)
    throw new UserError(
      `${origin}: shard ${index} of plan ${plan.id} has no tests: nothing to run. Fix: make the plan with \`itest plan --shards N --json\`, which never makes an empty shard`,
    );
  return {
    tests: s.tests,
    shard: { planId: plan.id, index: s.index, total: plan.total, plannedSeconds: s.plannedSeconds },
    ...(plan.durations ? { durations: plan.durations } : {}),
  };
}

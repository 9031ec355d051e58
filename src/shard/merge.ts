/**
 * Merges the results of the shards of one run into a single Results, as if one machine had run them
 * all. Pure. What cannot be trusted fails the merged run with its own note: a planned shard without
 * results, the same shard twice from the same attempt, a test in two shards, shards that disagree on the
 * image. A re-run job (a later attempt of the same shard) replaces the earlier attempt, with a notice.
 */
import {
  summarize,
  RESULTS_VERSION,
  type MergeNote,
  type Results,
  type ShardReport,
  type TestResult,
} from '../results/model.ts';
import type { Shard, ShardPlan } from '../config/shard-plan.ts';
import { resultNotRun } from '../results/test-result.ts';
import { UserError } from '../util/errors.ts';
import { seconds } from '../util/size.ts';

export interface ShardResults {
  /** Where the results came from (a file path), for messages. */
  source: string;
  results: Results;
}

const vmSeconds = (r: Results) => Math.round(r.tests.reduce((a, t) => a + t.timings.vmSeconds, 0) * 10) / 10;

/** Results files that are not a shard's cannot be merged with a plan or with shards. */
function checkSharded(inputs: ShardResults[], plan: ShardPlan | undefined): boolean {
  const unsharded = inputs.filter((i) => !i.results.shard);
  if (unsharded.length > 0 && (plan || unsharded.length !== inputs.length))
    throw new UserError(
      `${unsharded.map((i) => i.source).join(', ')}: not the results of a shard (no "shard" field); ` +
        'merge only results of `itest run --plan ... --shard N` (or the action with `shard`)',
    );
  return unsharded.length === 0;
}

/** "Re-run all jobs" plans again: results of another plan's shards (an earlier attempt) cannot be merged. */
function ofThisPlan(inputs: ShardResults[], plan: ShardPlan | undefined, notes: MergeNote[]): ShardResults[] {
  if (!plan) return inputs;
  const other = inputs.filter((i) => i.results.shard?.planId && i.results.shard.planId !== plan.id);
  for (const o of other)
    notes.push({
      level: 'notice',
      message: `${o.source}: ignored, shard ${o.results.shard!.index} of another plan (${o.results.shard!.planId}; this run's is ${plan.id}), e.g. from an earlier attempt`,
    });
  return inputs.filter((i) => !other.includes(i));
}

const attemptOf = (s: ShardResults) => s.results.shard?.attempt ?? 1;

/** One results file per shard: the latest attempt; the same attempt twice cannot be told apart. */
function latestPerShard(
  inputs: ShardResults[],
  sharded: boolean,
  notes: MergeNote[],
): Map<number, ShardResults> {
  const byIndex = new Map<number, ShardResults[]>();
  inputs.forEach((input, i) => {
    const idx = sharded ? input.results.shard!.index : i + 1;
    byIndex.set(idx, [...(byIndex.get(idx) ?? []), input]);
  });
  const chosen = new Map<number, ShardResults>();
  for (const [idx, list] of byIndex) {
    const sorted = [...list].sort((a, b) => attemptOf(b) - attemptOf(a));
    const top = sorted[0]!;
    const same = sorted.filter((s) => attemptOf(s) === attemptOf(top));
    if (same.length > 1)
      notes.push({
        level: 'error',
        message: `shard ${idx} appears ${same.length} times from attempt ${attemptOf(top)} (${same.map((s) => s.source).join(', ')}); keeping ${top.source}`,
      });
    for (const older of sorted.filter((s) => !same.includes(s)))
      notes.push({
        level: 'notice',
        message: `shard ${idx}: attempt ${top.results.shard?.attempt} (re-run) replaces attempt ${attemptOf(older)} (${older.source})`,
      });
    chosen.set(idx, top);
  }
  return chosen;
}

/** How many shards the run had, and whether the chosen shards agree on it and on the image. */
function shardTotal(
  chosen: Map<number, ShardResults>,
  plan: ShardPlan | undefined,
  fallback: number,
  notes: MergeNote[],
): number {
  const totals = new Set([...chosen.values()].map((c) => c.results.shard?.total ?? fallback));
  const total = plan?.total ?? Math.max(...totals, ...chosen.keys());
  if (!plan && totals.size > 1)
    notes.push({
      level: 'error',
      message: `the shards disagree on the number of shards (${[...totals].join(', ')})`,
    });
  for (const [idx, c] of chosen)
    if (idx > total)
      notes.push({
        level: 'error',
        message: `${c.source}: shard ${idx} is not in the plan of ${total} shard(s)`,
      });
  const keys = new Set([...chosen.values()].map((c) => c.results.environment.image.key));
  if (keys.size > 1)
    notes.push({ level: 'error', message: `the shards booted different images: ${[...keys].join(', ')}` });
  return total;
}

/** A shard that left no results: its planned tests are errors. */
function missingShard(idx: number, total: number, planned: Shard | undefined, notes: MergeNote[]) {
  notes.push({
    level: 'error',
    message: `shard ${idx}/${total} left no results (its job failed, was cancelled or could not upload them)`,
  });
  const report: ShardReport = {
    index: idx,
    attempt: 0,
    status: 'missing',
    tests: planned?.tests ?? [],
    plannedSeconds: planned?.plannedSeconds ?? 0,
  };
  const tests = (planned?.tests ?? []).map((name) =>
    resultNotRun({ name }, `no result: shard ${idx}/${total} left no results`),
  );
  return { report, tests };
}

/** A shard's tests, each kept once (the first shard that ran it), and what the plan expected of it. */
function shardTests(
  idx: number,
  total: number,
  c: ShardResults,
  planned: Shard | undefined,
  owner: Map<string, number>,
  notes: MergeNote[],
) {
  const r = c.results;
  const names = r.tests.map((t) => t.name);
  const tests: TestResult[] = [];
  for (const t of r.tests) {
    const other = owner.get(t.name);
    if (other !== undefined) {
      notes.push({
        level: 'error',
        message: `test ${t.name} ran in shard ${other} and shard ${idx}; keeping shard ${other}'s result`,
      });
      continue;
    }
    owner.set(t.name, idx);
    tests.push(t);
  }
  for (const name of planned?.tests ?? []) {
    if (names.includes(name)) continue;
    notes.push({
      level: 'error',
      message: `test ${name} was planned for shard ${idx} but is not in its results (${c.source})`,
    });
    tests.push(resultNotRun({ name }, `no result: planned for shard ${idx}/${total}, not in its results`));
  }
  if (planned)
    for (const name of names.filter((n) => !planned.tests.includes(n)))
      notes.push({
        level: 'notice',
        message: `test ${name} ran in shard ${idx} without being planned there`,
      });
  const report: ShardReport = {
    index: idx,
    attempt: r.shard?.attempt ?? 1,
    status: r.summary.ok ? 'ok' : 'failed',
    tests: names,
    plannedSeconds: planned?.plannedSeconds ?? r.shard?.plannedSeconds ?? 0,
    wallSeconds: r.durationSeconds,
    vmSeconds: vmSeconds(r),
    source: c.source,
  };
  return { report, tests };
}

/**
 * The environment of the merged run: the earliest shard's, except that a shard whose KVM turned out
 * broken makes the whole report say so (each such shard also gets a notice).
 */
function mergedEnvironment(first: Results, chosen: Map<number, ShardResults>, notes: MergeNote[]) {
  const fellBack = [...chosen.entries()].filter(([, c]) => c.results.environment.accelFallback);
  for (const [idx, c] of fellBack)
    notes.push({
      level: 'notice',
      message: `shard ${idx}: KVM was broken on its runner, it ran under TCG (${c.results.environment.accelFallback!.reason})`,
    });
  const [, one] = fellBack[0] ?? [];
  if (!one) return first.environment;
  const env = one.results.environment;
  return {
    ...first.environment,
    accel: env.accel,
    accelDetail: env.accelDetail,
    accelFallback: {
      ...env.accelFallback!,
      rerun: fellBack.flatMap(([, c]) => c.results.environment.accelFallback!.rerun),
    },
  };
}

export function mergeResults(inputs: ShardResults[], plan?: ShardPlan, problems: string[] = []): Results {
  if (inputs.length === 0)
    throw new UserError('no results to merge: no results.json found in the given directories');
  const notes: MergeNote[] = problems.map((message) => ({ level: 'error', message }));
  const sharded = checkSharded(inputs, plan);
  const mergeable = ofThisPlan(inputs, plan, notes);
  const chosen = latestPerShard(mergeable, sharded, notes);
  const total = shardTotal(chosen, plan, mergeable.length, notes);

  const tests: TestResult[] = [];
  const shards: ShardReport[] = [];
  const owner = new Map<string, number>();
  for (let idx = 1; idx <= total; idx++) {
    const planned = plan?.shards[idx - 1];
    const c = chosen.get(idx);
    const part = c
      ? shardTests(idx, total, c, planned, owner, notes)
      : missingShard(idx, total, planned, notes);
    shards.push(part.report);
    tests.push(...part.tests);
  }

  // Every file may have been ignored (all from another plan): the environment then comes from those.
  const present = chosen.size > 0 ? [...chosen.values()].map((c) => c.results) : inputs.map((i) => i.results);
  const first = present.reduce((a, b) => (a.startedAt <= b.startedAt ? a : b));
  const finishedAt = present.map((r) => r.finishedAt).reduce((a, b) => (a >= b ? a : b));
  const summary = summarize(tests);
  const fatal = notes.some((n) => n.level === 'error');
  return {
    version: RESULTS_VERSION,
    startedAt: first.startedAt,
    finishedAt,
    durationSeconds: seconds(Date.parse(finishedAt) - Date.parse(first.startedAt)),
    config: first.config,
    environment: mergedEnvironment(first, chosen, notes),
    summary: { ...summary, ok: summary.ok && !fatal },
    tests,
    shards,
    ...(notes.length > 0 ? { mergeNotes: notes } : {}),
  };
}

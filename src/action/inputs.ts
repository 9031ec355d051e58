/**
 * Action inputs -> one typed config (the action's context.ts). Pure: inputs come through a getter, so
 * every default and every error message is testable without a runner. Errors name the input and the fix.
 */
import { resolve } from 'node:path';
import type { RunConfig } from '../config/run-config.ts';
import { resolveConfigDir, defaultManifest, mkosiCommand, DEFAULT_OUTPUT } from '../config/run-config.ts';
import { UserError } from '../util/errors.ts';
import { parseShardCount, parseShardPlan, selectShard, type ShardPlan } from '../shard/plan-shards.ts';

export interface ActionConfig {
  run: RunConfig;
  cache: boolean;
  uploadLogs: 'failed' | 'all' | 'none';
  retentionDays: number;
  summary: boolean;
  annotations: boolean;
  artifactPrefix: string;
  junitPath?: string;
  setupRunner: boolean;
  /** run: test (one job or one shard); prepare: image + shard plan, no VMs; report: merge the shards. */
  mode: 'run' | 'prepare' | 'report';
  /** prepare: how many shards. */
  shards: number | 'auto';
  /** prepare/run: results.json of an earlier run (durations history). */
  durationsPath?: string;
  /** run: the prepare job's plan and this job's shard; report: the plan the shards followed. */
  plan?: ShardPlan;
  shard?: number;
  /** Prefix of the shard results artifacts (the report job downloads `<prefix>-*`). */
  resultsArtifactPrefix: string;
  /** report: directories holding the downloaded shard results. */
  mergeDirs: string[];
  /** A check run with this name (needs checks: write); empty = none. */
  checkName: string;
  token: string;
  /** Install this mkosi release with the tool cache when set. */
  mkosiRelease: string;
  /** Tells apart jobs of one run that run this action (a matrix value); part of artifact names. */
  label: string;
}

export type InputGetter = (name: string) => string;

const list = (v: string) =>
  v
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);

function oneOf<T extends string>(name: string, v: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new UserError(`input \`${name}\`: "${v}" is not one of ${allowed.join(', ')}`);
}

function bool(name: string, v: string): boolean {
  if (/^(true|yes|1)$/i.test(v)) return true;
  if (/^(false|no|0)$/i.test(v)) return false;
  throw new UserError(`input \`${name}\`: "${v}" is not a boolean; use true or false`);
}

function number(
  name: string,
  v: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  integer = true,
): number | undefined {
  if (v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new UserError(
      `input \`${name}\`: "${v}" must be a ${integer ? 'whole ' : ''}number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`,
    );
  }
  return n;
}

function tryConfigDir(cwd: string, flag: string): string {
  try {
    return resolveConfigDir(cwd, flag || undefined);
  } catch {
    return resolve(cwd, flag || '.');
  }
}

export function parseInputs(get: InputGetter, env: NodeJS.ProcessEnv, cwd = process.cwd()): ActionConfig {
  const input = (n: string, d = '') => get(n).trim() || d;
  // The report mode merges results files and needs no config; it tolerates a job without a checkout.
  const configDir =
    input('mode') === 'report'
      ? tryConfigDir(cwd, input('config'))
      : resolveConfigDir(cwd, input('config') || undefined);
  const jobs = number('jobs', input('jobs'), 1, 256);
  const timeout = number('timeout', input('timeout'), 1, 86400, false);
  const scale = number('timeout-scale', input('timeout-scale'), 0.1, 100, false);
  const uploadLogs = oneOf('upload-logs', input('upload-logs', 'failed'), ['failed', 'all', 'none'] as const);
  const run: RunConfig = {
    configDir,
    manifestPath: input('manifest') ? resolve(cwd, input('manifest')) : defaultManifest(configDir),
    outputDir: resolve(cwd, input('output', DEFAULT_OUTPUT)),
    tests: list(input('tests')),
    tags: list(input('tags')),
    transport: oneOf('transport', input('transport', 'auto'), ['auto', 'vsock', 'serial'] as const),
    kvm: oneOf('kvm', input('kvm', 'auto'), ['auto', 'yes', 'no'] as const),
    // The artifact decides what leaves the runner; on disk everything the upload needs is kept.
    keep: uploadLogs === 'all' ? 'all' : 'failed',
    mkosi: mkosiCommand(input('mkosi') || undefined, env),
    cacheDir: resolve(env.RUNNER_TEMP ?? cwd, 'itest-cache'),
    useCache: bool('cache', input('cache', 'true')),
    hashKey: input('cache-key'),
    hashGlobs: list(input('hash-globs')),
    keyPrefix: input('key-prefix', 'itest-image'),
    invokedAs: 'itest',
    env,
    ...(jobs !== undefined ? { jobs } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(scale !== undefined ? { timeoutScale: scale } : {}),
  };
  const mode = oneOf('mode', input('mode', 'run'), ['run', 'prepare', 'report'] as const);
  const planText = input('plan');
  const plan = planText ? parseShardPlan(planText, 'input `plan`') : undefined;
  const shard = number('shard', input('shard'), 1, 64);
  if (mode === 'run' && (shard === undefined) !== (plan === undefined))
    throw new UserError(
      "inputs `plan` and `shard` go together: pass the prepare job's plan output and this job's matrix shard",
    );
  if (plan && shard !== undefined && mode === 'run') {
    if (run.tests.length > 0 || run.tags.length > 0)
      throw new UserError('input `shard` selects the tests of its shard; leave `tests` and `tags` empty');
    const selected = selectShard(plan, shard, 'input `shard`');
    run.tests = selected.tests;
    run.shard = selected.shard;
    if (selected.durations) run.durations = selected.durations;
  }
  const imageKey = input('image-key');
  if (imageKey) run.expectedKey = imageKey;
  run.imagePolicy = oneOf('image-policy', input('image-policy', 'build'), ['build', 'restore-only'] as const);
  const shards = parseShardCount(input('shards', 'auto'), 'input `shards`');
  const durations = input('durations');
  const mkosiRelease = input('mkosi-release');
  const junit = input('junit-path');
  return {
    mode,
    shards,
    ...(durations ? { durationsPath: resolve(cwd, durations) } : {}),
    ...(plan ? { plan } : {}),
    ...(shard !== undefined ? { shard } : {}),
    resultsArtifactPrefix: input('results-artifact-prefix', 'itest-results'),
    mergeDirs: list(input('merge', 'itest-shards')).map((d) => resolve(cwd, d)),
    checkName: input('check-name'),
    token: input('token'),
    mkosiRelease,
    label: input('label'),
    run,
    cache: run.useCache,
    uploadLogs,
    retentionDays: number('retention-days', input('retention-days', '14'), 1, 90) ?? 14,
    summary: bool('summary', input('summary', 'true')),
    annotations: bool('annotations', input('annotations', 'true')),
    artifactPrefix: input('artifact-prefix', 'itest-logs'),
    setupRunner: bool('setup-runner', input('setup-runner', 'true')),
    ...(junit ? { junitPath: resolve(cwd, junit) } : {}),
  };
}

/**
 * Action inputs -> one typed config (the action's context.ts). Pure: inputs come through a getter, so
 * every default and every error message is testable without a runner. The run's settings go through the
 * same builder as the CLI's flags (config/run-config.ts buildRunConfig, defaults in config/settings.ts);
 * the action's own inputs are read here. Errors name the input and the fix. What the run takes from the
 * job (its run attempt, RUNNER_TEMP for the image cache) comes in as the GitHub context, read once by the
 * caller; `env` is the run's environment (what mkosi and QEMU run with, and buildRunConfig's lookups:
 * ITEST_MKOSI, ITEST_CACHE_DIR, HOME).
 */
import { resolve } from 'node:path';
import { buildRunConfig, type RawSettings, type RunConfig } from '../config/run-config.ts';
import { SETTINGS, type SettingKey } from '../config/settings.ts';
import { UserError } from '../util/errors.ts';
import { parseShardCount, parseShardPlan, type ShardPlan } from '../config/shard-plan.ts';
import type { GitHubContext } from './github/context.ts';

export interface ActionConfig {
  run: RunConfig;
  cache: boolean;
  uploadLogs: 'failed' | 'all' | 'none';
  retentionDays: number;
  summary: boolean;
  annotations: boolean;
  artifactPrefix: string;
  junitPath?: string;
  /** Open the KVM and vhost devices and lift AppArmor's user namespace restriction (runner/setup.ts). */
  setupRunner: boolean;
  /** Why setupRunner is off although the input left it to `auto` (a runner that is not GitHub's). */
  setupRunnerSkipped?: string;
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

function number(name: string, v: string, min: number, max: number): number | undefined {
  if (v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UserError(`input \`${name}\`: "${v}" must be a whole number from ${min} to ${max}`);
  return n;
}

/**
 * Whether to change the runner's device modes and sysctls. Those changes outlive the job: harmless on a
 * GitHub-hosted runner, which is thrown away after it, but not on a self-hosted one, which keeps /dev/kvm
 * world-writable and user namespaces unrestricted for everything that runs there later. So `auto` (the
 * default) changes them only on GitHub's runners, and a self-hosted runner needs an explicit `true`.
 */
function setupPolicy(v: string, runnerEnvironment: string | undefined): { apply: boolean; skipped?: string } {
  if (v !== 'auto' && !/^(true|yes|1|false|no|0)$/i.test(v))
    throw new UserError(`input \`setup-runner\`: "${v}" is not one of auto, true, false`);
  if (v !== 'auto') return { apply: bool('setup-runner', v) };
  if (runnerEnvironment === 'github-hosted') return { apply: true };
  return {
    apply: false,
    skipped:
      `this runner is not GitHub-hosted (RUNNER_ENVIRONMENT=${runnerEnvironment ?? 'unset'}): /dev/kvm, /dev/vhost-vsock, /dev/vhost-net ` +
      "and AppArmor's user namespace restriction are left as they are, since changes to them would outlive the job; " +
      'set the input setup-runner: true to make them anyway',
  };
}

/** The run's settings that the action has as inputs (settings.ts says which). */
const RUN_INPUTS = (Object.keys(SETTINGS) as SettingKey[]).filter(
  (k) => (SETTINGS[k] as { input?: string }).input !== undefined && k !== 'plan' && k !== 'durations',
);

export function parseInputs(
  get: InputGetter,
  gh: Pick<GitHubContext, 'runAttempt' | 'runnerTemp' | 'runnerEnvironment'>,
  env: NodeJS.ProcessEnv,
  cwd = process.cwd(),
): ActionConfig {
  const input = (n: string, d = '') => get(n).trim() || d;
  const mode = oneOf('mode', input('mode', 'run'), ['run', 'prepare', 'report'] as const);
  const uploadLogs = oneOf('upload-logs', input('upload-logs', 'failed'), ['failed', 'all', 'none'] as const);
  const raw: RawSettings = {};
  for (const k of RUN_INPUTS) raw[k] = get((SETTINGS[k] as { input: string }).input);
  // The artifact decides what leaves the runner; on disk everything the upload needs is kept.
  raw.keep = uploadLogs === 'all' ? 'all' : 'failed';
  const planText = input('plan');
  const plan = planText ? parseShardPlan(planText, 'input `plan`') : undefined;
  // Only a shard job runs a plan entry; prepare and report are handed the plan to write or check it.
  const run: RunConfig = buildRunConfig(mode === 'run' ? raw : { ...raw, shard: '' }, {
    door: 'action',
    cwd,
    env,
    invokedAs: 'itest',
    ...(plan && mode === 'run' ? { plan } : {}),
    runAttempt: Number(gh.runAttempt) || 1,
    cacheDir: resolve(gh.runnerTemp ?? cwd, 'itest-cache'),
    // The report mode merges results files and needs no config; it tolerates a job without a checkout.
    configOptional: mode === 'report',
  });
  const shard = number('shard', input('shard'), SETTINGS.shard.bounds.min, SETTINGS.shard.bounds.max);
  const shards = parseShardCount(input('shards', 'auto'), 'input `shards`');
  const durations = input('durations');
  const mkosiRelease = input('mkosi-release');
  const junit = input('junit-path');
  const setup = setupPolicy(input('setup-runner', 'auto'), gh.runnerEnvironment);
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
    setupRunner: setup.apply,
    ...(setup.skipped ? { setupRunnerSkipped: setup.skipped } : {}),
    ...(junit ? { junitPath: resolve(cwd, junit) } : {}),
  };
}

/**
 * Action inputs -> one typed config (the action's context.ts). Pure: inputs come through a getter, so
 * every default and every error message is testable without a runner. Errors name the input and the fix.
 */
import { resolve } from 'node:path';
import type { RunConfig } from '../config/run-config.ts';
import { resolveConfigDir, defaultManifest, mkosiCommand, DEFAULT_OUTPUT } from '../config/run-config.ts';
import { UserError } from '../util/errors.ts';

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

export function parseInputs(get: InputGetter, env: NodeJS.ProcessEnv, cwd = process.cwd()): ActionConfig {
  const input = (n: string, d = '') => get(n).trim() || d;
  const configDir = resolveConfigDir(cwd, input('config') || undefined);
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
  const junit = input('junit-path');
  return {
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

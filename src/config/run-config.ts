/** RunConfig: the one typed, validated model both front doors produce. Every default lives here. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { MANIFEST_NAME } from './manifest.ts';
import { UserError } from '../util/errors.ts';

/** A yes/no setting that can also be left to the host (`auto`): KVM. */
export type Choice = 'auto' | 'yes' | 'no';

/** Seconds by test name, from an earlier run's results (shard/durations.ts reads them). */
export type Durations = Record<string, number>;

export interface RunConfig {
  configDir: string;
  manifestPath: string;
  outputDir: string;
  tests: string[];
  tags: string[];
  jobs?: number;
  /** Overrides every test's timeout (seconds, before TCG scaling). */
  timeout?: number;
  timeoutScale?: number;
  transport: 'auto' | 'vsock' | 'serial';
  kvm: Choice;
  keep: 'failed' | 'all';
  mkosi: string[];
  /** Local image cache root; images live under <cacheDir>/images/<key>. */
  cacheDir: string;
  useCache: boolean;
  /** A prebuilt mkosi output directory to boot instead of building. */
  imageDir?: string;
  hashKey: string;
  hashGlobs: string[];
  keyPrefix: string;
  /** Keep the VM of the (single) selected test up on this terminal after the test ends. */
  shell?: boolean;
  /** Known durations (seconds by test name) from an earlier run: the pool starts the longest first. */
  durations?: Durations;
  /** This run is one shard of a sharded run (recorded in results.json for the merge). */
  shard?: { planId: string; index: number; total: number; plannedSeconds: number };
  /** restore-only: a cache miss is an error instead of a build (shards of a prepared run). */
  imagePolicy?: 'build' | 'restore-only';
  /** The key the prepare step computed; a different key here is an error that says why. */
  expectedKey?: string;
  /** How the user invoked itest (`itest`, `node dist/cli/index.js`), for the rerun commands. */
  invokedAs: string;
  env: NodeJS.ProcessEnv;
}

export const DEFAULT_OUTPUT = 'itest-results';

/** --config, else the current directory when it holds mkosi.conf, else its mkosi/ subdirectory. */
export function resolveConfigDir(cwd: string, flag?: string): string {
  if (flag) {
    const dir = resolve(cwd, flag);
    if (!existsSync(dir)) throw new UserError(`--config ${flag}: no such directory`);
    if (!existsSync(join(dir, 'mkosi.conf')) && existsSync(join(dir, 'mkosi', 'mkosi.conf')))
      return join(dir, 'mkosi');
    if (!existsSync(join(dir, 'mkosi.conf')) && !existsSync(join(dir, 'mkosi.conf.d'))) {
      throw new UserError(
        `--config ${flag}: no mkosi.conf in ${dir} (nor in ${join(dir, 'mkosi')}). Fix: point --config at the directory holding mkosi.conf`,
      );
    }
    return dir;
  }
  if (existsSync(join(cwd, 'mkosi.conf'))) return cwd;
  if (existsSync(join(cwd, 'mkosi', 'mkosi.conf'))) return join(cwd, 'mkosi');
  throw new UserError(
    `no mkosi.conf in ${cwd} or ${join(cwd, 'mkosi')}. Fix: run from your project or pass --config DIR`,
  );
}

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.ITEST_CACHE_DIR) return env.ITEST_CACHE_DIR;
  const xdg =
    env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)
      ? env.XDG_CACHE_HOME
      : join(env.HOME ?? homedir(), '.cache');
  return join(xdg, 'itest');
}

export function defaultManifest(configDir: string): string {
  return join(configDir, MANIFEST_NAME);
}

/** The mkosi command: --mkosi, else $ITEST_MKOSI, else `mkosi` on PATH. One executable, no shell. */
export function mkosiCommand(flag: string | undefined, env: NodeJS.ProcessEnv): string[] {
  return [flag ?? env.ITEST_MKOSI ?? 'mkosi'];
}

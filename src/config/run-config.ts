/**
 * RunConfig: the one typed, validated model both front doors produce, through one builder
 * (buildRunConfig) from the raw strings each front door has; the settings, their docs and defaults are
 * the table in settings.ts.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { MANIFEST_NAME } from './manifest.ts';
import { mesonMkosiDir } from './meson-suite.ts';
import { systemdEnvironment } from './systemd-env.ts';
import {
  SCALED_TIMEOUT,
  SETTINGS,
  spell,
  spellPair,
  type FrontDoor,
  type Setting,
  type SettingKey,
} from './settings.ts';
import { selectShard, type ShardPlan } from './shard-plan.ts';
import { UserError } from '../util/errors.ts';

/** A yes/no setting that can also be left to the host (`auto`): KVM. */
export type Choice = 'auto' | 'yes' | 'no';

/** Seconds by test name, from an earlier run's results (shard/durations.ts reads them). */
export type Durations = Record<string, number>;

export interface RunConfig {
  configDir: string;
  manifestPath: string;
  /** Tests from this meson build directory (or saved `meson introspect --tests`) instead of a manifest. */
  mesonBuildDir?: string;
  /** With mesonBuildDir: only this meson suite's tests. */
  mesonSuite?: string;
  outputDir: string;
  tests: string[];
  tags: string[];
  jobs?: number;
  /** Overrides every test's timeout (seconds, before TCG scaling). */
  timeout?: number;
  timeoutScale?: number;
  transport: 'auto' | 'vsock' | 'vsock-user' | 'serial';
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
  /** Run the selection this many times over (set when more than once): a test fails if any run fails. */
  repeat?: number;
  /** Keep the VM of the (single) selected test up on this terminal after the test ends. */
  shell?: boolean;
  /** --incremental: build from the base state on a miss (src/image/base-store.ts). */
  incremental?: boolean;
  /** --vm-slots (or $ITEST_VM_SLOTS): the slot directory of a VM budget shared with other itest processes. */
  vmSlots?: string;
  /** Known durations (seconds by test name) from an earlier run: the pool starts the longest first. */
  durations?: Durations;
  /** This run is one shard of a sharded run (recorded in results.json for the merge). */
  shard?: {
    planId: string;
    index: number;
    total: number;
    plannedSeconds: number;
    /** The CI job's run attempt (a re-run job replaces its earlier attempt in the merge). */
    attempt: number;
  };
  /** restore-only: a cache miss is an error instead of a build (shards of a prepared run). */
  imagePolicy?: 'build' | 'restore-only';
  /** The key the prepare step computed; a different key here is an error that says why. */
  expectedKey?: string;
  /** How the user invoked itest (`itest`, `node dist/cli/index.js`), for the rerun commands. */
  invokedAs: string;
  /** Which front door the settings came through: messages spell them its way (`--kvm` or input `kvm`). */
  door: FrontDoor;
  env: NodeJS.ProcessEnv;
}

export const DEFAULT_OUTPUT = SETTINGS.output.default;

/** The config directory: the given one, else the current directory when it holds mkosi.conf, else ./mkosi. */
export function resolveConfigDir(cwd: string, given?: string, door: FrontDoor = 'cli'): string {
  const name = spell(door, 'config');
  if (given) {
    const dir = resolve(cwd, given);
    if (!existsSync(dir)) throw new UserError(`${spell(door, 'config', given)}: no such directory`);
    if (!existsSync(join(dir, 'mkosi.conf')) && existsSync(join(dir, 'mkosi', 'mkosi.conf')))
      return join(dir, 'mkosi');
    if (!existsSync(join(dir, 'mkosi.conf')) && !existsSync(join(dir, 'mkosi.conf.d'))) {
      throw new UserError(
        `${spell(door, 'config', given)}: no mkosi.conf in ${dir} (nor in ${join(dir, 'mkosi')}). Fix: point ${name} at the directory holding mkosi.conf`,
      );
    }
    return dir;
  }
  if (existsSync(join(cwd, 'mkosi.conf'))) return cwd;
  if (existsSync(join(cwd, 'mkosi', 'mkosi.conf'))) return join(cwd, 'mkosi');
  throw new UserError(
    `no mkosi.conf in ${cwd} or ${join(cwd, 'mkosi')}. Fix: run from your project or set ${name}`,
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

/** The settings as a front door has them: strings (lists as arrays or comma/newline separated). */
export type RawSettings = { [K in SettingKey]?: string | string[] };

export interface BuildContext {
  door: FrontDoor;
  cwd: string;
  env: NodeJS.ProcessEnv;
  invokedAs: string;
  /** The shard plan, read by the front door (a file for the CLI, JSON text for the action). */
  plan?: ShardPlan;
  /** Durations the front door loaded from `durations` (they win over the plan's). */
  durations?: Durations;
  /** The CI job's run attempt, recorded with a shard's results. */
  runAttempt?: number;
  /** Where the local image cache is when the user did not say (the action: under RUNNER_TEMP). */
  cacheDir?: string;
  /** Tolerate a missing config directory (the action's report mode merges files and needs none). */
  configOptional?: boolean;
}

/** Reads raw settings as typed values, defaults from settings.ts, errors naming the setting as spelled. */
function settingReader(raw: RawSettings, door: FrontDoor) {
  const name = (k: SettingKey) => spell(door, k);
  const str = (k: SettingKey): string | undefined => {
    const v = raw[k];
    const t = (Array.isArray(v) ? v.join(',') : v)?.trim();
    return t ? t : (SETTINGS[k] as Setting).default || undefined;
  };
  return {
    name,
    str,
    list(k: SettingKey): string[] {
      const v = raw[k];
      return (Array.isArray(v) ? v : (v ?? '').split(/[\n,]/)).map((x) => x.trim()).filter(Boolean);
    },
    choice(k: SettingKey): string {
      const v = str(k)!;
      const allowed = (SETTINGS[k] as Setting).choices ?? [];
      if (!allowed.includes(v)) throw new UserError(`${name(k)}: "${v}" is not one of ${allowed.join(', ')}`);
      return v;
    },
    bool(k: SettingKey): boolean {
      const v = str(k) ?? '';
      if (/^(true|yes|1)$/i.test(v)) return true;
      if (/^(false|no|0)$/i.test(v)) return false;
      throw new UserError(`${name(k)}: "${v}" is not a boolean; use true or false`);
    },
    /** A number within the setting's bounds (settings.ts). */
    number(k: SettingKey): number | undefined {
      const v = str(k);
      if (v === undefined) return undefined;
      const { min, max, integer } = (SETTINGS[k] as Setting).bounds!;
      const n = Number(v);
      if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max)
        throw new UserError(
          `${name(k)}: "${v}" must be a ${integer ? 'whole ' : ''}number from ${min} to ${max}`,
        );
      return n;
    },
  };
}

/**
 * Why a timeout (seconds) times a scale is no timeout the engine can arm (settings.ts SCALED_TIMEOUT), or
 * undefined when it is one. The scale is the one the user set; without one it is 1 or 3 (TCG), which
 * the bounds of `timeout` keep within range.
 */
export function scaledTimeoutProblem(timeout: number, scale: number, door: FrontDoor): string | undefined {
  const scaled = Math.round(timeout * scale);
  const what = `${timeout} s x ${spell(door, 'timeoutScale', String(scale))} = ${scaled} s`;
  if (scaled < SCALED_TIMEOUT.min)
    return `${what}: the test would time out the moment it starts. Fix: raise the timeout or the scale (at least ${SCALED_TIMEOUT.min} s after scaling)`;
  if (scaled > SCALED_TIMEOUT.max)
    return `${what}: longer than the ${SCALED_TIMEOUT.max} s a timer can wait (it would fire at once). Fix: lower the timeout or the scale`;
  return undefined;
}

/** A shard: the plan and its index go together, and the plan selects the tests. */
function applyShard(cfg: RunConfig, read: ReturnType<typeof settingReader>, ctx: BuildContext): void {
  const shard = read.number('shard');
  if ((ctx.plan === undefined) !== (shard === undefined))
    throw new UserError(
      `${spellPair(ctx.door, 'plan', 'shard').full} go together: the shard plan and which of its shards this run is`,
    );
  let planned: ReturnType<typeof selectShard> | undefined;
  if (ctx.plan && shard !== undefined) {
    if (cfg.tests.length > 0 || cfg.tags.length > 0)
      throw new UserError(
        `${read.name('shard')} selects the tests of its shard; leave ${spellPair(ctx.door, 'tests', 'tags').bare} empty`,
      );
    planned = selectShard(ctx.plan, shard, read.name('shard'));
    cfg.tests = planned.tests;
    cfg.shard = { ...planned.shard, attempt: ctx.runAttempt ?? 1 };
  }
  // Durations given with the run win over the ones the plan was made with.
  const durations = ctx.durations ?? planned?.durations;
  if (durations) cfg.durations = durations;
}

const definedOnly = (raw: RawSettings): RawSettings =>
  Object.fromEntries(
    Object.entries(raw).filter(([, v]) => v !== undefined && (Array.isArray(v) || v.trim() !== '')),
  );

/** The meson suite settings, and the mkosi config they imply when the config is not given. */
function mesonSettings(
  raw: RawSettings,
  ctx: BuildContext,
): { buildDir?: string; suite?: string; configDir?: string } {
  const read = settingReader(raw, ctx.door);
  const dir = read.str('mesonBuildDir');
  const suite = read.str('mesonSuite');
  if (!dir) {
    if (suite)
      throw new UserError(
        `${read.name('mesonSuite')} picks a suite of ${read.name('mesonBuildDir')}: set that too`,
      );
    return {};
  }
  if (read.str('manifest'))
    throw new UserError(
      `${spellPair(ctx.door, 'manifest', 'mesonBuildDir').bare} are two sources of tests: leave one of them out`,
    );
  const buildDir = resolve(ctx.cwd, dir);
  const out: { buildDir: string; suite?: string; configDir?: string } = { buildDir };
  if (suite) out.suite = suite;
  if (!read.str('config')) {
    const found = mesonMkosiDir(buildDir);
    if (!found)
      throw new UserError(
        `${read.name('mesonBuildDir')} ${dir}: ${existsSync(join(buildDir, 'meson-info')) ? 'no mkosi/mkosi.conf in its source directory or the three above it' : 'no meson build directory (a saved introspection names no source directory)'}. Fix: set ${read.name('config')} to the mkosi config (systemd: <source>/mkosi)`,
      );
    out.configDir = found;
  }
  return out;
}

/** Turns raw settings into a RunConfig: defaults from settings.ts, every error naming the setting. */
export function buildRunConfig(given: RawSettings, ctx: BuildContext): RunConfig {
  const meson = mesonSettings(given, ctx);
  // A meson suite takes systemd's environment variables (TEST_SHELL, ...); explicit settings win.
  const raw = meson.buildDir ? { ...systemdEnvironment(ctx.env).settings, ...definedOnly(given) } : given;
  const read = settingReader(raw, ctx.door);
  const { str, list, choice, bool } = read;
  const cwd = ctx.cwd;
  let configDir: string;
  try {
    configDir = resolveConfigDir(cwd, str('config') ?? meson.configDir, ctx.door);
  } catch (e) {
    if (!ctx.configOptional) throw e;
    configDir = resolve(cwd, str('config') ?? '.');
  }
  const manifest = str('manifest');
  const cacheDir = str('cacheDir');
  const cfg: RunConfig = {
    configDir,
    manifestPath: manifest ? resolve(cwd, manifest) : defaultManifest(configDir),
    ...(meson.buildDir ? { mesonBuildDir: meson.buildDir } : {}),
    ...(meson.suite ? { mesonSuite: meson.suite } : {}),
    outputDir: resolve(cwd, str('output')!),
    tests: list('tests'),
    tags: list('tags'),
    transport: choice('transport') as RunConfig['transport'],
    kvm: choice('kvm') as Choice,
    keep: choice('keep') as RunConfig['keep'],
    mkosi: mkosiCommand(str('mkosi'), ctx.env),
    cacheDir: cacheDir ? resolve(cwd, cacheDir) : (ctx.cacheDir ?? defaultCacheDir(ctx.env)),
    useCache: bool('cache'),
    hashKey: str('hashKey') ?? '',
    hashGlobs: list('hashGlobs'),
    keyPrefix: str('keyPrefix')!,
    imagePolicy: choice('imagePolicy') as NonNullable<RunConfig['imagePolicy']>,
    invokedAs: ctx.invokedAs,
    door: ctx.door,
    env: ctx.env,
  };
  const jobs = read.number('jobs');
  const timeout = read.number('timeout');
  const timeoutScale = read.number('timeoutScale');
  if (timeout !== undefined && timeoutScale !== undefined) {
    const problem = scaledTimeoutProblem(timeout, timeoutScale, ctx.door);
    if (problem) throw new UserError(`${spell(ctx.door, 'timeout', String(timeout))}: ${problem}`);
  }
  if (jobs !== undefined) cfg.jobs = jobs;
  const repeat = read.number('repeat');
  if (repeat !== undefined && repeat > 1) cfg.repeat = repeat;
  if (timeout !== undefined) cfg.timeout = timeout;
  if (timeoutScale !== undefined) cfg.timeoutScale = timeoutScale;
  const imageDir = str('imageDir');
  if (imageDir) cfg.imageDir = resolve(cwd, imageDir);
  if (str('shell') !== undefined && bool('shell')) cfg.shell = true;
  if (str('incremental') !== undefined && bool('incremental')) cfg.incremental = true;
  const vmSlots = str('vmSlots') ?? ctx.env.ITEST_VM_SLOTS;
  if (vmSlots) cfg.vmSlots = resolve(cwd, vmSlots);
  const expectedKey = str('expectedKey');
  if (expectedKey) cfg.expectedKey = expectedKey;
  applyShard(cfg, read, ctx);
  return cfg;
}

/** Which settings (src/config/settings.ts) each verb takes: one list per verb, the others derived from it. */
import type { SettingKey } from '../config/settings.ts';

/** The settings every command that reads the config takes. */
export const COMMON: readonly SettingKey[] = [
  'config',
  'manifest',
  'mesonBuildDir',
  'mesonSuite',
  'tests',
  'tags',
  'mkosi',
  'hashKey',
  'hashGlobs',
  'keyPrefix',
];

export const RUN: readonly SettingKey[] = [
  ...COMMON,
  'jobs',
  'vmSlots',
  'timeout',
  'timeoutScale',
  'transport',
  'kvm',
  'keep',
  'output',
  'cacheDir',
  'cache',
  'incremental',
  'imageDir',
  'shell',
  'durations',
  'plan',
  'shard',
  'repeat',
];

/**
 * What `itest run` takes and `itest test` does not: meson selects, repeats and times the tests itself,
 * and every process meson starts must share one cached image build (so no --no-cache).
 */
const NOT_FOR_TEST: ReadonlySet<SettingKey> = new Set<SettingKey>([
  'mesonBuildDir',
  'mesonSuite',
  'tests',
  'tags',
  'cache',
  'durations',
  'plan',
  'shard',
  'repeat',
]);

/** The settings `itest test` takes. */
export const TEST_VERB: readonly SettingKey[] = RUN.filter((k) => !NOT_FOR_TEST.has(k));

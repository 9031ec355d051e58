/**
 * The environment variables of systemd's integration-test-wrapper.py (systemd 257), and what each means
 * for an itest run: one table, one reader. The CLI and the action apply them when they import a meson
 * suite (--meson-build-dir), where users of `meson test` set them; a flag or input given explicitly wins.
 * Pure.
 */
import type { TestSpec } from './test-spec.ts';
import type { RawSettings } from './run-config.ts';
import { UserError } from '../util/errors.ts';

export interface EnvRule {
  variable: string;
  /** What it means to systemd's wrapper. */
  meaning: string;
  /** What itest does with it. */
  effect: string;
}

export const SYSTEMD_ENV: readonly EnvRule[] = [
  {
    variable: 'TEST_MATCH_SUBTEST',
    meaning: 'run only the subtests matching this regex',
    effect: "set in the test unit's environment by its drop-in (Environment=), as the wrapper does",
  },
  {
    variable: 'TEST_MATCH_TESTCASE',
    meaning: 'run only the test cases matching this regex',
    effect: "set in the test unit's environment by its drop-in (Environment=), as the wrapper does",
  },
  {
    variable: 'TEST_SKIP',
    meaning: 'skip the tests whose name contains one of these words (blank-separated)',
    effect: 'those tests are reported as skipped without a VM',
  },
  {
    variable: 'TEST_SAVE_JOURNAL',
    meaning: "0: keep no journal, 1: keep every test's, fail (the default): keep failed tests'",
    effect: '1 is --keep all, fail and 0 are --keep failed (itest always keeps the logs of failed tests)',
  },
  {
    variable: 'TEST_SHELL',
    meaning: '1: boot the default target and leave a shell on the terminal',
    effect: '--shell',
  },
  { variable: 'TEST_NO_KVM', meaning: '1: do not use KVM', effect: '--kvm no' },
  {
    variable: 'TEST_NO_QEMU',
    meaning: '1: skip the tests that need a VM (--vm)',
    effect: 'the tests registered with --vm are reported as skipped',
  },
  {
    variable: 'SYSTEMD_SLOW_TESTS',
    meaning: '1: also run the tests registered with --slow',
    effect: 'without it, the --slow tests are reported as skipped',
  },
  {
    variable: 'MESON_TEST_ITERATION',
    meaning: "meson test --repeat's iteration, appended to the VM's machine name",
    effect: "none needed: itest's machine names are unique per run and attempt (use --repeat for iterations)",
  },
];

export interface SystemdEnvEffects {
  /** Settings the environment implies; the front door's explicit ones win. */
  settings: RawSettings;
  /** Set in every test unit's environment. */
  unitEnvironment: Record<string, string>;
  /** Why a test is not run, or undefined. */
  skip(spec: Pick<TestSpec, 'name' | 'vm' | 'slow'>): string | undefined;
}

/** `bool(int(value))` as the wrapper reads its switches; anything else is an error naming the variable. */
function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name]?.trim();
  if (v === undefined || v === '') return false;
  if (!/^[+-]?\d+$/.test(v))
    throw new UserError(`environment variable ${name}="${v}": not a number. Fix: set it to 1 or 0`);
  return Number(v) !== 0;
}

export function systemdEnvironment(env: NodeJS.ProcessEnv): SystemdEnvEffects {
  const settings: RawSettings = {};
  const save = env.TEST_SAVE_JOURNAL?.trim();
  if (save !== undefined && save !== '') {
    if (!['0', '1', 'fail'].includes(save))
      throw new UserError(
        `environment variable TEST_SAVE_JOURNAL="${save}": not one of 0, 1, fail. Fix: set one of them or unset it`,
      );
    settings.keep = save === '1' ? 'all' : 'failed';
  }
  if (flag(env, 'TEST_SHELL')) settings.shell = 'true';
  if (flag(env, 'TEST_NO_KVM')) settings.kvm = 'no';
  const unitEnvironment: Record<string, string> = {};
  for (const name of ['TEST_MATCH_SUBTEST', 'TEST_MATCH_TESTCASE']) {
    const v = env[name];
    if (!v) continue;
    if (/[\n\r]/.test(v))
      throw new UserError(
        `environment variable ${name}: a line break cannot go into Environment=. Fix: use a regex without one`,
      );
    unitEnvironment[name] = v;
  }
  const words = (env.TEST_SKIP ?? '').split(/\s+/).filter(Boolean);
  const noQemu = flag(env, 'TEST_NO_QEMU');
  const slow = flag(env, 'SYSTEMD_SLOW_TESTS');
  return {
    settings,
    unitEnvironment,
    skip(spec) {
      const word = words.find((w) => spec.name.includes(w));
      if (word) return `TEST_SKIP contains "${word}"`;
      if (noQemu && spec.vm) return 'TEST_NO_QEMU=1 and the test needs a VM (--vm)';
      if (spec.slow && !slow) return 'a slow test (--slow) and SYSTEMD_SLOW_TESTS=1 is not set';
      return undefined;
    },
  };
}

/** The specs with the environment's skips and unit environment applied (a test's own skip stays). */
export function applySystemdEnvironment(specs: readonly TestSpec[], fx: SystemdEnvEffects): TestSpec[] {
  return specs.map((s) => {
    const out: TestSpec = { ...s };
    const skip = s.skip ?? fx.skip(s);
    if (skip) out.skip = skip;
    if (Object.keys(fx.unitEnvironment).length > 0)
      out.unitEnvironment = { ...fx.unitEnvironment, ...s.unitEnvironment };
    return out;
  });
}

/**
 * systemd's conventions: the wrapper's environment variables (one table, each row's effect here), the
 * unit environment they put into the test's drop-in, QEMU killed twice as a skip, and the shell-word
 * splitting mkosi applies to --qemu-args and --credential.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SYSTEMD_ENV, applySystemdEnvironment, systemdEnvironment } from '../../src/config/systemd-env.ts';
import { buildRunConfig } from '../../src/config/run-config.ts';
import { testUnitDropin } from '../../src/guest/units.ts';
import { guestCredentials } from '../../src/mkosi/vm-argv.ts';
import { skipWhenQemuKilled } from '../../src/results/qemu-killed.ts';
import { applySanitizerPolicy } from '../../src/results/sanitizer-policy.ts';
import { DigestBuilder } from '../../src/digest/builder.ts';
import type { Outcome } from '../../src/results/model.ts';
import { shellWords } from '../../src/util/shell-words.ts';
import type { TestSpec } from '../../src/config/test-spec.ts';
import { UserError } from '../../src/util/errors.ts';
import { rm } from 'node:fs/promises';
import { executeTest } from '../../src/run/execute-test.ts';
import { Accelerator } from '../../src/run/accelerator.ts';
import { standinContext } from '../helpers/standin.ts';
import { hostSetup, testSpec } from '../helpers/spec.ts';

const spec = (name: string, more: Partial<TestSpec> = {}): TestSpec =>
  testSpec({
    name,
    unit: `${name}.service`,
    timeout: 60,
    exitStatus: 123,
    retries: 0,
    infraRetries: 1,
    source: 'meson',
    ...more,
  });

/** Each variable of the table: an environment, and what it must do. */
const CASES: Record<
  string,
  { env: NodeJS.ProcessEnv; check: (fx: ReturnType<typeof systemdEnvironment>) => void }
> = {
  TEST_MATCH_SUBTEST: {
    env: { TEST_MATCH_SUBTEST: 'test_foo' },
    check: (fx) => assert.deepEqual(fx.unitEnvironment, { TEST_MATCH_SUBTEST: 'test_foo' }),
  },
  TEST_MATCH_TESTCASE: {
    env: { TEST_MATCH_TESTCASE: 'case.*' },
    check: (fx) => assert.deepEqual(fx.unitEnvironment, { TEST_MATCH_TESTCASE: 'case.*' }),
  },
  TEST_SKIP: {
    env: { TEST_SKIP: 'UDEV  TEST-01' },
    check: (fx) => {
      assert.match(fx.skip(spec('TEST-64-UDEV-STORAGE')) ?? '', /TEST_SKIP contains "UDEV"/);
      assert.match(fx.skip(spec('TEST-01-BASIC')) ?? '', /"TEST-01"/);
      assert.equal(fx.skip(spec('TEST-02-UNITTESTS')), undefined);
    },
  },
  TEST_SAVE_JOURNAL: {
    env: { TEST_SAVE_JOURNAL: '1' },
    check: (fx) => {
      assert.equal(fx.settings.keep, 'all');
      assert.equal(systemdEnvironment({ TEST_SAVE_JOURNAL: 'fail' }).settings.keep, 'failed');
      assert.equal(systemdEnvironment({ TEST_SAVE_JOURNAL: '0' }).settings.keep, 'failed');
      assert.throws(
        () => systemdEnvironment({ TEST_SAVE_JOURNAL: 'yes' }),
        /TEST_SAVE_JOURNAL="yes": not one of 0, 1, fail/,
      );
    },
  },
  TEST_SHELL: { env: { TEST_SHELL: '1' }, check: (fx) => assert.equal(fx.settings.shell, 'true') },
  TEST_NO_KVM: {
    env: { TEST_NO_KVM: '1' },
    check: (fx) => {
      assert.equal(fx.settings.kvm, 'no');
      assert.equal(systemdEnvironment({ TEST_NO_KVM: '0' }).settings.kvm, undefined);
      assert.throws(() => systemdEnvironment({ TEST_NO_KVM: 'true' }), UserError);
    },
  },
  TEST_NO_QEMU: {
    env: { TEST_NO_QEMU: '1' },
    check: (fx) => {
      assert.match(fx.skip(spec('T', { vm: true })) ?? '', /TEST_NO_QEMU=1/);
      assert.equal(fx.skip(spec('T', { vm: false })), undefined);
    },
  },
  SYSTEMD_SLOW_TESTS: {
    env: { SYSTEMD_SLOW_TESTS: '1' },
    check: (fx) => {
      assert.equal(fx.skip(spec('T', { slow: true })), undefined);
      assert.match(
        systemdEnvironment({}).skip(spec('T', { slow: true })) ?? '',
        /SYSTEMD_SLOW_TESTS=1 is not set/,
      );
    },
  },
  MESON_TEST_ITERATION: {
    // No effect: itest's machine names are unique per run and attempt already.
    env: { MESON_TEST_ITERATION: '3' },
    check: (fx) => {
      assert.deepEqual(fx.settings, {});
      assert.deepEqual(fx.unitEnvironment, {});
      assert.equal(fx.skip(spec('T', { vm: true })), undefined);
    },
  },
};

describe("systemd's environment variables", () => {
  it('the table and the cases cover the same variables, each with a meaning and an effect', () => {
    assert.deepEqual(SYSTEMD_ENV.map((r) => r.variable).sort(), Object.keys(CASES).sort());
    for (const r of SYSTEMD_ENV) assert.ok(r.meaning && r.effect, r.variable);
  });

  for (const [name, c] of Object.entries(CASES)) it(name, () => c.check(systemdEnvironment(c.env)));

  it('an empty environment changes nothing', () => {
    const fx = systemdEnvironment({});
    assert.deepEqual(fx.settings, {});
    const [t] = applySystemdEnvironment([spec('T', { vm: true })], fx);
    assert.equal(t!.skip, undefined);
    assert.equal(t!.unitEnvironment, undefined);
  });

  it("apply: the test's own skip reason stays; the unit environment goes on every test", () => {
    const fx = systemdEnvironment({ TEST_SKIP: 'T', TEST_MATCH_SUBTEST: 'x' });
    const [a, b] = applySystemdEnvironment([spec('A', { skip: 'own' }), spec('T2')], fx);
    assert.equal(a!.skip, 'own');
    assert.match(b!.skip ?? '', /TEST_SKIP/);
    assert.deepEqual(b!.unitEnvironment, { TEST_MATCH_SUBTEST: 'x' });
  });

  it('a meson suite run takes them as settings; a flag given explicitly wins', () => {
    const build = new URL('../fixtures/meson/systemd-257-tests.json', import.meta.url).pathname;
    const ctx = (env: NodeJS.ProcessEnv) => ({
      door: 'cli' as const,
      cwd: '/',
      env,
      invokedAs: 'itest',
      cacheDir: '/c',
    });
    const config = new URL('../../examples/demo', import.meta.url).pathname;
    const env = { TEST_SAVE_JOURNAL: '1', TEST_NO_KVM: '1' };
    const cfg = buildRunConfig({ mesonBuildDir: build, config }, ctx(env));
    assert.equal(cfg.keep, 'all');
    assert.equal(cfg.kvm, 'no');
    assert.equal(buildRunConfig({ mesonBuildDir: build, config, kvm: 'yes' }, ctx(env)).kvm, 'yes');
    // Without a meson build directory the variables mean nothing to itest.
    assert.equal(buildRunConfig({ config }, ctx(env)).kvm, 'auto');
    assert.throws(
      () => buildRunConfig({ mesonSuite: 'x', config }, ctx({})),
      /--meson-suite picks a suite of --meson-build-dir/,
    );
    assert.throws(
      () => buildRunConfig({ mesonBuildDir: build, manifest: 'x.yaml', config }, ctx({})),
      /--manifest and --meson-build-dir are two sources of tests/,
    );
    // A saved introspection names no source directory: the config must be given.
    assert.throws(() => buildRunConfig({ mesonBuildDir: build }, ctx({})), /Fix: set --config/);
  });
});

describe('the unit environment in the drop-in', () => {
  it('goes into [Service] as Environment=, quoted and with % doubled', () => {
    const d = testUnitDropin('T.service', false, { TEST_MATCH_SUBTEST: 'a "b" 100%\\d' });
    assert.ok(d.includes('\nEnvironment="TEST_MATCH_SUBTEST=a \\"b\\" 100%%\\\\d"\n'), d);
    assert.ok(d.indexOf('Environment=') > d.indexOf('[Service]'));
    assert.ok(!testUnitDropin('T.service').includes('Environment='));
  });
  it("reaches the guest in the test unit's drop-in credential", () => {
    const creds = new Map(
      guestCredentials(spec('T', { unitEnvironment: { TEST_MATCH_TESTCASE: 'c' } }), 'serial'),
    );
    assert.match(creds.get('systemd.unit-dropin.T.service') ?? '', /^Environment="TEST_MATCH_TESTCASE=c"$/m);
  });
});

describe('QEMU killed (mkosi exit 247)', () => {
  const killed: Outcome = {
    status: 'error',
    reason: 'QEMU was killed (mkosi exit 247)',
    guestStatus: null,
    infra: true,
  };
  const p = { skipWhenQemuKilled: true, exitStatus: 123 };
  it('is retried first (left as the infra error), then a skip with the reason', () => {
    assert.equal(skipWhenQemuKilled(killed, 247, p, true), killed);
    const last = skipWhenQemuKilled(killed, 247, p, false);
    assert.equal(last.status, 'skip');
    assert.match(last.reason, /QEMU was killed .* again after its retry: skipped/);
  });
  it('only for the tests that ask, not when 247 is the expected exit, not for other errors', () => {
    assert.equal(skipWhenQemuKilled(killed, 247, { exitStatus: 123 }, false).status, 'error');
    assert.equal(skipWhenQemuKilled(killed, 247, { ...p, exitStatus: 247 }, false).status, 'error');
    assert.equal(skipWhenQemuKilled({ ...killed, reason: 'VM died' }, 1, p, false).status, 'error');
  });
});

describe('shell words (mkosi splits --qemu-args and --credential so)', () => {
  it('quotes, escapes, blanks', () => {
    assert.deepEqual(shellWords(` -device "nvme,serial=  a b ,x" 'it''s' a\\ b "q\\"x" `), [
      '-device',
      'nvme,serial=  a b ,x',
      'its',
      'a b',
      'q"x',
    ]);
    assert.deepEqual(shellWords('k=""'), ['k=']);
    assert.throws(() => shellWords('"open'), /no closing quotation/);
  });
});

describe('the attempt loop with an imported test (mkosi stand-in, real journal-remote)', () => {
  const tcg = () =>
    new Accelerator(hostSetup({ accel: 'tcg', accelDetail: 'no KVM', timeoutScale: 1, defaultCpus: 1 }), {
      transport: 'vsock',
      kvm: 'auto',
    });
  const imported = testSpec({ timeout: 30, infraRetries: 1, skipWhenQemuKilled: true, firmware: 'uefi' });

  it("QEMU killed twice: one retry, then a skip with the reason; the firmware is the test's", async () => {
    const argvs: string[][] = [];
    const { ctx, out } = await standinContext({
      plan: 'exit:247,exit:247',
      accelerator: tcg(),
      onAttemptStart: (_s, _n, argv) => argvs.push(argv),
    });
    try {
      const r = await executeTest(imported, ctx, 0);
      assert.equal(r.status, 'skip');
      assert.equal(r.attempts.length, 2);
      assert.match(r.reason, /mkosi exit 247\) again after its retry: skipped/);
      assert.ok(argvs[0]!.includes('--firmware=uefi'), argvs[0]!.join(' '));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('QEMU killed once, then a pass; without the flag, twice stays an error', async () => {
    const a = await standinContext({ plan: 'exit:247,exit:123', accelerator: tcg() });
    const b = await standinContext({ plan: 'exit:247,exit:247', accelerator: tcg() });
    try {
      assert.equal((await executeTest(imported, a.ctx, 0)).status, 'pass');
      const plain = await executeTest({ ...imported, skipWhenQemuKilled: false }, b.ctx, 0);
      assert.equal(plain.status, 'error');
    } finally {
      await rm(a.out, { recursive: true, force: true });
      await rm(b.out, { recursive: true, force: true });
    }
  });
});

describe('sanitizer reports (the wrapper fails a passing test on them)', () => {
  const pass: Outcome = { status: 'pass', reason: 'unit succeeded', guestStatus: 123, infra: false };
  const digest = (lines: string[]) => ({ ...new DigestBuilder('T.service').finish(), sanitizers: lines });
  const asan = 'systemd-resolved: ==42==ERROR: AddressSanitizer: heap-use-after-free';
  it('fail a passing test that asks, naming the first line', () => {
    const o = applySanitizerPolicy(pass, digest([asan]), { failOnSanitizer: true, shouldFail: false });
    assert.equal(o.status, 'fail');
    assert.match(o.reason, /1 sanitizer report line: systemd-resolved: ==42==ERROR: AddressSanitizer/);
  });
  it('not when excluded by the comm regex, not for tests that do not ask, not for expected failures', () => {
    const p = { failOnSanitizer: true, shouldFail: false, sanitizerExclude: '^systemd-resolved:' };
    assert.equal(applySanitizerPolicy(pass, digest([asan]), p).status, 'pass');
    assert.equal(applySanitizerPolicy(pass, digest([asan]), { shouldFail: false }).status, 'pass');
    assert.equal(
      applySanitizerPolicy(pass, digest([asan]), { failOnSanitizer: true, shouldFail: true }).status,
      'pass',
    );
    assert.equal(
      applySanitizerPolicy(pass, digest([]), { failOnSanitizer: true, shouldFail: false }).status,
      'pass',
    );
  });
});

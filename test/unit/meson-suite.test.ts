/**
 * Importing a meson-registered suite: systemd 257's real `meson introspect --tests` (the fixture) maps to
 * 96 TestSpecs with every argument understood, a small real meson project goes through the real meson,
 * and bad registrations fail naming the test and the argument.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMesonSuite, parseIntrospection, suiteFromTests } from '../../src/config/meson-suite.ts';
import { parseWrapperArgs, type MesonTest } from '../../src/config/wrapper-args.ts';
import { buildRunConfig } from '../../src/config/run-config.ts';
import type { TestSpec } from '../../src/config/test-spec.ts';
import { UserError } from '../../src/util/errors.ts';

const FIXTURE = new URL('../fixtures/meson/systemd-257-tests.json', import.meta.url).pathname;
const NOW = new Date('2026-01-02T03:04:05Z');
const text = readFileSync(FIXTURE, 'utf8')
  .replaceAll('@SOURCE_DIR@', '/src')
  .replaceAll('@BUILD_DIR@', '/build');
const raw = parseIntrospection(text, 'fixture');
const read: string[] = [];
const suite = suiteFromTests(raw, {
  origin: 'fixture',
  cwd: '/build',
  now: NOW,
  readFile: (p) => (read.push(p), `file ${p}`),
});
const byName = new Map(suite.tests.map((t) => [t.name, t]));
const spec = (n: string): TestSpec => byName.get(n) ?? assert.fail(`no ${n}`);
/** The spec's own kernel command line, after the seven entries the wrapper adds to every test. */
const ownCmdline = (t: TestSpec) => t.kernelCmdline.slice(7);

describe("systemd 257's registered suite (fixture)", () => {
  it('imports all 96 integration tests and nothing else', () => {
    assert.equal(suite.tests.length, 96);
    assert.equal(suite.ignored, 0);
    assert.equal(suite.sourceDir, '/src');
    assert.ok(suite.tests.every((t) => t.source === 'meson' && t.tags.includes('systemd:integration-tests')));
  });

  it('the fixture holds the option counts background.md lists', () => {
    const count = new Map<string, number>();
    for (const t of raw)
      for (const a of t.cmd.slice(1))
        if (a.startsWith('--') && a !== '--')
          count.set(a.split('=')[0]!, (count.get(a.split('=')[0]!) ?? 0) + 1);
    const want = {
      '--vm': 58,
      '--rtc': 1,
      '--skip': 1,
      '--drive': 263,
      '--qemu-args': 14,
      '--credential': 13,
      '--kernel-command-line-extra': 6,
      '--runtime-build-sources': 1,
      '--runtime-size': 1,
      '--name': 96,
      '--exit-code': 96,
    };
    for (const [o, n] of Object.entries(want)) assert.equal(count.get(o), n, o);
  });

  it('every option lands where it belongs, with the counts of the registrations', () => {
    const sum = (f: (t: TestSpec) => number) => suite.tests.reduce((a, t) => a + f(t), 0);
    assert.equal(
      sum((t) => (t.vm ? 1 : 0)),
      58,
    );
    assert.equal(
      sum((t) => (t.qemuArgs.includes('-rtc') ? 1 : 0)),
      1,
    );
    assert.equal(
      sum((t) => (t.skip ? 1 : 0)),
      1,
    );
    assert.equal(
      sum((t) => t.mkosiArgs.filter((a) => a.startsWith('--drive=')).length),
      263,
    );
    assert.equal(
      sum((t) => t.mkosiArgs.filter((a) => a.startsWith('--runtime-size=')).length),
      1,
    );
    assert.equal(
      sum((t) => t.mkosiArgs.filter((a) => a === '--runtime-build-sources=no').length),
      1,
    );
    // 13 --credential options, one credential each, besides the journal.storage every test gets.
    assert.equal(
      sum((t) => Object.keys(t.credentials).length - 1),
      13,
    );
    assert.equal(
      sum((t) => ownCmdline(t).length),
      6,
    );
    assert.equal(
      sum((t) => (t.qemuArgs.length > 0 && !t.qemuArgs.includes('-rtc') ? 1 : 0)),
      14,
    );
    // Nothing of mkosi's ends up in mkosi-args but the VM options and the wrapper's --runtime-network.
    const other = new Set(suite.tests.flatMap((t) => t.mkosiArgs.filter((a) => !a.startsWith('--drive='))));
    assert.deepEqual([...other].sort(), [
      '--runtime-build-sources=no',
      '--runtime-network=none',
      '--runtime-size=11G',
    ]);
    assert.ok(suite.tests.every((t) => t.firmware !== 'linux-noinitrd'));
    // --exit-code: 123 (the unit succeeded) everywhere but TEST-08-INITRD, registered with --exit-code 124.
    assert.deepEqual(
      suite.tests.filter((t) => t.exitStatus !== 123).map((t) => [t.name, t.exitStatus]),
      [['TEST-08-INITRD', 124]],
    );
  });

  it('TEST-24-CRYPTSETUP: credential, kernel command line, QEMU and mkosi options, storage', () => {
    const t = spec('TEST-24-CRYPTSETUP');
    assert.equal(t.unit, 'TEST-24-CRYPTSETUP.service');
    assert.equal(t.timeout, 1800);
    assert.equal(t.firmware, 'linux'); // linux-noinitrd boots with the initrd, as the wrapper does on Debian
    assert.deepEqual(t.credentials, {
      'journal.storage': 'volatile',
      'fstab.extra': '/dev/mapper/test24_varcrypt /var ext4 defaults 0 1',
    });
    assert.ok(t.mkosiArgs.includes('--runtime-size=11G'));
    assert.match(ownCmdline(t)[0]!, /^rd\.systemd\.wants=encrypted-var\.service rd\.luks=1 /);
    assert.deepEqual(t.qemuArgs, [
      '-drive',
      'id=keydev,if=none,format=raw,cache=unsafe,file=/build/mkosi.output/keydev.raw',
      '-device',
      'scsi-hd,drive=keydev,serial=keydev',
    ]);
    assert.equal(t.vm, true);
    assert.equal(t.skipWhenQemuKilled, true);
    assert.equal(t.failOnSanitizer, true);
    assert.equal(t.sanitizerExclude, undefined); // registered with an empty regex: nothing excluded
  });

  it('TEST-54-CREDS: NAME=VALUE credentials unquoted like mkosi, files read under their own names', () => {
    const t = spec('TEST-54-CREDS');
    assert.equal(t.credentials['sysusers.extra'], 'u credtestuser');
    assert.equal(t.credentials['tmpfiles.extra'], 'f /tmp/sourcedfromcredential - - - - tmpfilessecret');
    const file =
      '/build/../systemd-257.13/test/integration-tests/TEST-54-CREDS/systemd.extra-unit.my-service.service';
    assert.ok(read.includes(file));
    assert.equal(t.credentials['systemd.extra-unit.my-service.service'], `file ${file}`);
    assert.ok(ownCmdline(t).some((k) => k.includes('systemd.set_credential=kernelcmdlinecred:uff')));
  });

  it('TEST-53-TIMER --rtc, TEST-86 --skip, TEST-21 meson timeout, quoted QEMU words of TEST-64', () => {
    assert.deepEqual(spec('TEST-53-TIMER').qemuArgs, ['-rtc', 'base=2026-01-02T03:04:05']);
    assert.match(spec('TEST-86-MULTI-PROFILE-UKI').skip ?? '', /--skip/);
    assert.equal(spec('TEST-86-MULTI-PROFILE-UKI').firmware, 'auto');
    assert.equal(spec('TEST-21-DFUZZER').timeout, 3600);
    assert.ok(
      spec('TEST-64-UDEV-STORAGE-nvme_basic').qemuArgs.includes(
        'nvme,drive=nvme5,serial=    deadbeef  5   ,max_ioqpairs=8',
      ),
    );
    const t = spec('TEST-01-BASIC');
    assert.ok(
      t.kernelCmdline.includes(
        'SYSTEMD_UNIT_PATH=/usr/lib/systemd/tests/testdata/TEST-01-BASIC.units:/usr/lib/systemd/tests/testdata/units:',
      ),
    );
    assert.equal(t.vm, false);
  });
});

const wrapper = (name: string, extra: string[] = [], mkosi: string[] = []): MesonTest => ({
  name,
  cmd: [
    '/s/test/integration-tests/integration-test-wrapper.py',
    ...['--meson-source-dir', '/s', '--meson-build-dir', '/b', '--name', name, '--unit', `${name}.service`],
    ...['--storage', 'persistent', '--firmware', 'uefi', '--exit-code', '123'],
    ...['--coredump-exclude-regex', '', '--sanitizer-exclude-regex', '', ...extra, '--', ...mkosi],
  ],
  timeout: 60,
  suite: ['p:integration-tests'],
  workdir: null,
  env: {},
});
const one = (t: MesonTest) =>
  suiteFromTests([t], { origin: 'intro.json', cwd: '/b', now: NOW, readFile: () => '' }).tests[0]!;

describe('wrapper arguments', () => {
  it('an unknown wrapper argument is an error naming the test and the argument', () => {
    assert.throws(
      () => one(wrapper('TEST-X', ['--frobnicate'])),
      (e: unknown) =>
        e instanceof UserError && /intro\.json: test TEST-X: unknown argument "--frobnicate"/.test(e.message),
    );
  });

  it('a mkosi option that would outlive the test is refused, naming the test', () => {
    assert.throws(
      () => one(wrapper('TEST-X', [], ['--format=disk'])),
      (e: unknown) =>
        e instanceof UserError && /test TEST-X: mkosi argument "--format=disk" is refused/.test(e.message),
    );
  });

  it('--timeout wins over meson timeout; coredump and sanitizer regexes; --no-vm; exit code 247 keeps 247', () => {
    const t = one(
      wrapper(
        'TEST-Y',
        ['--timeout=90', '--no-vm', '--coredump-exclude-regex=^sleep$', '--sanitizer-exclude-regex', 'x'],
        [],
      ),
    );
    assert.equal(t.timeout, 90);
    assert.equal(t.vm, false);
    assert.equal(t.coredumpExclude, '^sleep$');
    assert.equal(t.sanitizerExclude, 'x');
    assert.equal(t.firmware, 'uefi');
    const q = wrapper('TEST-Z');
    q.cmd[q.cmd.indexOf('--exit-code') + 1] = '247';
    assert.equal(one(q).skipWhenQemuKilled, false);
  });

  it('a required wrapper option missing, or a value that is no number, is named', () => {
    assert.throws(() => parseWrapperArgs('T', ['--name', 'T']), /test T: --meson-source-dir is missing/);
    assert.throws(() => one(wrapper('T', ['--timeout', 'soon'])), /--timeout "soon" is not a whole number/);
  });

  it('no wrapper test in the chosen suite names the suites there are', () => {
    assert.throws(
      () =>
        suiteFromTests([wrapper('T')], {
          origin: 'o',
          suite: 'nope',
          cwd: '/',
          now: NOW,
          readFile: () => '',
        }),
      /no test runs integration-test-wrapper.py in suite "nope".*wrapper suites: p:integration-tests/,
    );
  });
});

describe('a real meson project', () => {
  it('meson setup, the real meson introspect, the importer; --config defaults to <source>/mkosi', async () => {
    const root = mkdtempSync(join(tmpdir(), 'itest-meson-'));
    try {
      const src = join(root, 'src');
      mkdirSync(join(src, 'test'), { recursive: true });
      mkdirSync(join(src, 'mkosi'));
      writeFileSync(join(src, 'mkosi', 'mkosi.conf'), '[Distribution]\nDistribution=debian\n');
      const script = join(src, 'test', 'integration-test-wrapper.py');
      writeFileSync(script, '#!/bin/sh\nexit 77\n');
      chmodSync(script, 0o755);
      writeFileSync(join(src, 'test', 'cred.txt'), 'from a file\n');
      const common = (n: string) =>
        `'--meson-source-dir', meson.project_source_root(), '--meson-build-dir', meson.project_build_root(), '--name', '${n}', '--unit', '${n}.service', '--storage', 'volatile', '--firmware', 'linux', '--exit-code', '123', '--coredump-exclude-regex', '', '--sanitizer-exclude-regex', ''`;
      writeFileSync(
        join(src, 'meson.build'),
        [
          "project('demo', 'c', version: '1')",
          "wrapper = find_program('test/integration-test-wrapper.py')",
          `test('TEST-01-A', wrapper, args: [${common('TEST-01-A')}, '--vm', '--', '--credential', 'a.b="c d"', '--qemu-args=-device virtio-rng-pci'], timeout: 300, suite: 'integration-tests')`,
          `test('TEST-02-B', wrapper, args: [${common('TEST-02-B')}, '--', '--credential', meson.project_source_root() / 'test/cred.txt', '--kernel-command-line-extra=foo=1'], timeout: 120, suite: 'integration-tests')`,
          "test('unit-test', find_program('true'), suite: 'unit')",
          '',
        ].join('\n'),
      );
      const build = join(root, 'build');
      execFileSync('meson', ['setup', build, src], { stdio: 'pipe' });
      const s = await loadMesonSuite(build, { suite: 'integration-tests', now: NOW });
      assert.deepEqual(
        s.tests.map((t) => t.name),
        ['TEST-01-A', 'TEST-02-B'],
      );
      assert.equal(s.ignored, 1);
      const [a, b] = s.tests as [TestSpec, TestSpec];
      assert.equal(a.timeout, 300);
      assert.equal(a.vm, true);
      assert.equal(a.credentials['a.b'], 'c d');
      assert.deepEqual(a.qemuArgs, ['-device', 'virtio-rng-pci']);
      assert.equal(b.timeout, 120);
      assert.equal(b.credentials['cred.txt'], 'from a file\n');
      assert.deepEqual(ownCmdline(b), ['foo=1']);
      const cfg = buildRunConfig(
        { mesonBuildDir: build, mesonSuite: 'integration-tests' },
        { door: 'cli', cwd: root, env: { TEST_NO_KVM: '1' }, invokedAs: 'itest', cacheDir: '/c' },
      );
      assert.equal(cfg.configDir, join(src, 'mkosi'));
      assert.equal(cfg.mesonBuildDir, build);
      assert.equal(cfg.kvm, 'no');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('tests that run itest itself', () => {
  it('are not imported twice over: the error says to run their manifest directly', () => {
    const t: MesonTest = {
      name: 'TEST-01-BASIC',
      cmd: ['/usr/bin/node', '/x/dist/cli/index.js', 'test', 'TEST-01-BASIC', '--config', '/x/examples/demo'],
      timeout: 600,
      suite: ['itest-demo:integration'],
      workdir: null,
      env: {},
    };
    assert.throws(
      () => suiteFromTests([t], { origin: 'o', cwd: '/', now: NOW, readFile: () => '' }),
      /run itest itself .*Fix: run `itest run --config/,
    );
  });
});

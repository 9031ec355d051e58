/**
 * Issue 14, item 1: `itest test NAME`, one test per process the way `meson test` runs them. Pure: the
 * exit statuses of meson's exitcode protocol and TAP (read back by a small TAP 14 reader). Real processes
 * of the CLI under tsx with the mkosi stand-in (test/helpers/mkosi-standin.mjs, which logs every build
 * and VM with its time): several started at once on a fresh cache build once and stay within the VM
 * budget; each outcome's exit status; --tap; SIGTERM followed by SIGKILL 0.5 s later, as meson's timeout
 * does, leaves the console log and the journal stream on disk and no VM behind.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mesonExitCode, mesonTapExitCode, renderTap } from '../../src/results/meson.ts';
import type { Status } from '../../src/results/model.ts';
import { parseDeadline, testOutputDir } from '../../src/cli/test-verb.ts';
import { DigestBuilder } from '../../src/digest/builder.ts';
import { testResult } from '../helpers/results.ts';
import { LocalImageCache } from '../../src/image/local-cache.ts';
import { selfToken } from '../../src/image/live-process.ts';
import { hostSlots } from '../../src/run/host-slots.ts';
import { DEMO, MKOSI_STANDIN, ROOT, TSX } from '../helpers/run-tree.ts';

/** TAP 14 as meson's TAPParser reads it: version, plan, points (with directives), bail out. */
function readTap(text: string) {
  const lines = text.split('\n').filter(Boolean);
  const points: { ok: boolean; n: number; desc: string; skip: boolean }[] = [];
  let plan: { count: number; skip: boolean } | undefined;
  let bail: string | undefined;
  for (const l of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^1\.\.(\d+)(\s*#\s*SKIP.*)?$/i.exec(l))) plan = { count: Number(m[1]), skip: Boolean(m[2]) };
    else if ((m = /^(not )?ok (\d+)(?: - ((?:[^#\\]|\\.)*))?(#\s*SKIP)?/.exec(l)))
      points.push({ ok: !m[1], n: Number(m[2]), desc: (m[3] ?? '').trim(), skip: Boolean(m[4]) });
    else if ((m = /^Bail out!\s*(.*)$/.exec(l))) bail = m[1];
    else assert.match(l, /^(TAP version 14|#.*| {2}.*)$/, `a line TAP does not know: ${l}`);
  }
  assert.equal(lines[0], 'TAP version 14');
  if (!bail) {
    assert.ok(plan, 'a plan');
    assert.equal(points.length, plan.count, 'as many points as planned');
    points.forEach((p, i) => assert.equal(p.n, i + 1, 'numbered in order'));
  }
  return { plan, points, bail };
}

describe("meson's view of a result: exit statuses and TAP", () => {
  const table: [Status | undefined, number, number][] = [
    ['pass', 0, 0],
    ['fail', 1, 0],
    ['skip', 77, 0],
    ['timeout', 1, 0],
    ['error', 99, 99],
    [undefined, 99, 99],
  ];
  for (const [status, exit, tap] of table)
    it(`${status ?? 'no result'}: exit ${exit}, with --tap ${tap}`, () => {
      assert.equal(mesonExitCode(status), exit);
      assert.equal(mesonTapExitCode(status), tap);
    });

  it('TAP: the subtests, then the test as a whole; a failure outside every subtest is a not ok', () => {
    const t = testResult('T', 'timeout', { reason: 'no result within 30 s' });
    t.digest = new DigestBuilder('T.service').finish();
    t.digest.subtests = [
      { name: 'a', result: 'pass', message: '' },
      { name: 'b # tricky\nname', result: 'skipped', message: 'no disk' },
      { name: 'c', result: 'fail', message: 'boom' },
    ];
    const tap = readTap(renderTap(t, 'T').join('\n'));
    assert.deepEqual(
      tap.points.map((p) => [p.ok, p.skip, p.desc]),
      [
        [true, false, 'a'],
        [true, true, 'b \\# tricky name'],
        [false, false, 'c'],
        [false, false, 'T'],
      ],
    );
  });

  it('TAP: a skip is the plan 1..0 # SKIP, an error a Bail out!, a pass one ok', () => {
    assert.deepEqual(readTap(renderTap(testResult('T', 'skip'), 'T').join('\n')).plan, {
      count: 0,
      skip: true,
    });
    assert.match(
      readTap(renderTap(undefined, 'T', 'image build failed').join('\n')).bail!,
      /image build failed/,
    );
    const pass = readTap(renderTap(testResult('T', 'pass'), 'T').join('\n'));
    assert.deepEqual(
      pass.points.map((p) => p.ok),
      [true],
    );
  });

  it('per-test output directories: safe names, one per meson --repeat iteration', () => {
    assert.equal(testOutputDir('/o', 'T/../x', {}), '/o/T_.._x');
    assert.equal(testOutputDir('/o', 'T', { MESON_TEST_ITERATION: '3' }), '/o/T.iteration-3');
    assert.equal(testOutputDir('/o', 'T', { MESON_TEST_ITERATION: '1' }), '/o/T');
    assert.throws(() => parseDeadline('2'), /--deadline: "2" must be a number of seconds from 4/);
  });
});

describe('the shared build lock and VM slots: dead holders are taken over', () => {
  /** A token of this boot whose process is gone (a PID above any pid_max). */
  const deadToken = async () => `4194305-1-${(await selfToken()).split('-')[2]}`;

  it("a build lock whose holder died is taken over; a live holder's is waited on until its image appears", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-lock-'));
    try {
      const cache = new LocalImageCache(dir);
      await mkdir(join(dir, 'locks'), { recursive: true });
      await writeFile(join(dir, 'locks', 'k1'), await deadToken());
      const claim = await cache.claimBuild('k1', { pollMs: 20 });
      assert.ok('release' in claim, 'the dead builder is taken over');
      await claim.release();
      assert.equal(existsSync(join(dir, 'locks', 'k1')), false, 'released');
      // A live holder (this process's parent stands in for another itest): wait, then its image.
      const parent = `${process.ppid}-${(await readFile(`/proc/${process.ppid}/stat`, 'utf8')).split(') ')[1]!.split(' ')[19]}-${(await selfToken()).split('-')[2]}`;
      await writeFile(join(dir, 'locks', 'k2'), parent);
      let waited = '';
      const waiting = cache.claimBuild('k2', { pollMs: 20, onWait: (h) => (waited = h) });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(waited, parent);
      const built = await cache.buildDir('k2');
      await cache.save('k2', built);
      const got = await waiting;
      assert.ok('restored' in got && got.restored.hit, "the other's image, no build of its own");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("VM slots: at most the budget; a dead holder's slot is free again; a waiter gets the slot released", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-slots-'));
    try {
      const gate = hostSlots(dir, { pollMs: 20 });
      const signal = new AbortController().signal;
      await writeFile(join(dir, '0'), await deadToken());
      const first = await gate(2, signal);
      const second = await gate(2, signal);
      let third = false;
      const waiting = gate(2, signal).then((r) => ((third = true), r));
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(third, false, 'a third waits while two of two are held');
      await first();
      await (
        await waiting
      )();
      assert.equal(third, true);
      await second();
      const stop = new AbortController();
      const held = [await gate(1, signal)];
      const cancelled = gate(1, stop.signal);
      stop.abort('cancelled by SIGTERM');
      await assert.rejects(cancelled);
      await held[0]!();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

interface Proc {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** One `itest test` process with the stand-in, in a process group of its own (as meson's setsid). */
function itestTest(
  name: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  extra: string[] = [],
): { pid: number; done: Promise<Proc> } {
  return itestProcess(['test', name], dir, env, extra);
}

/** `itest run` or `itest test` (verb and its operands first) with the stand-in. */
function itestProcess(
  verb: string[],
  dir: string,
  env: NodeJS.ProcessEnv,
  extra: string[] = [],
): { pid: number; done: Promise<Proc> } {
  const args = [
    '--import',
    TSX,
    join(ROOT, 'src/cli/index.ts'),
    ...verb,
    '--config',
    DEMO,
    '--mkosi',
    MKOSI_STANDIN,
    '--cache-dir',
    join(dir, 'cache'),
    '--output',
    join(dir, 'out'),
    '--kvm',
    'no',
    '--transport',
    'serial',
    '--timeout-scale',
    '1',
    ...extra,
  ];
  const child = spawn(process.execPath, args, {
    cwd: dir,
    detached: true,
    env: {
      ...process.env,
      STANDIN_LOG: join(dir, 'events'),
      STANDIN_BUILD_MS: '1500',
      FAKE_MKOSI_SERIAL: '1',
      ...env,
    },
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  return {
    pid: child.pid!,
    done: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err }))),
  };
}

/** The stand-in's events: how many builds, and the most VMs up at once. */
async function events(dir: string): Promise<{ builds: number; vms: number; maxConcurrent: number }> {
  const lines = (await readFile(join(dir, 'events'), 'utf8')).trim().split('\n');
  const ev = lines.map((l) => l.split(' ')).map(([what, , ms]) => ({ what: what!, ms: Number(ms) }));
  let up = 0;
  let max = 0;
  for (const e of ev
    .filter((x) => x.what.startsWith('vm-'))
    .sort((a, b) => a.ms - b.ms || (a.what === 'vm-end' ? -1 : 1))) {
    up += e.what === 'vm-start' ? 1 : -1;
    max = Math.max(max, up);
  }
  return {
    builds: ev.filter((e) => e.what === 'build-start').length,
    vms: ev.filter((e) => e.what === 'vm-start').length,
    maxConcurrent: max,
  };
}

describe('itest test: real processes with the mkosi stand-in', { timeout: 120_000 }, () => {
  it('four processes at once on a fresh cache: one build, never more VMs than the budget, each its own results', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-meson-'));
    try {
      const runs = [
        ['TEST-01-BASIC', 'slow-exit:123', 0],
        ['TEST-02-SKIP', 'slow-exit:77', 77],
        ['TEST-03-EXPECTED-FAIL', 'slow-exit:1', 0],
        ['TEST-01-BASIC', 'slow-exit:123', 0],
      ] as const;
      const procs = runs.map(([name, plan], i) =>
        itestTest(name, dir, { FAKE_MKOSI_PLAN: plan, ...(i === 3 ? { MESON_TEST_ITERATION: '2' } : {}) }, [
          '--jobs',
          '1',
        ]),
      );
      const ended = await Promise.all(procs.map((p) => p.done));
      ended.forEach((e, i) => assert.equal(e.code, runs[i]![2], `${runs[i]![0]}: ${e.out}${e.err}`));
      const ev = await events(dir);
      assert.equal(ev.builds, 1, 'exactly one image build');
      assert.equal(ev.vms, 4);
      assert.equal(ev.maxConcurrent, 1, 'the budget of 1 VM held across the processes');
      // The other three waited for that build (then hit), or, started once it was over on a loaded machine, hit.
      const waited = ended.filter((e) => /another itest \(process \d+\) is building/.test(e.out)).length;
      const reused = ended.filter((e) => /image: cache hit for /.test(e.out)).length;
      assert.ok(waited >= 1, 'at least one process waited for the build');
      assert.equal(reused, 3, 'the three others used the one build');
      for (const d of [
        'TEST-01-BASIC',
        'TEST-02-SKIP',
        'TEST-03-EXPECTED-FAIL',
        'TEST-01-BASIC.iteration-2',
      ]) {
        const r = JSON.parse(readFileSync(join(dir, 'out', d, 'results.json'), 'utf8')) as {
          tests: unknown[];
        };
        assert.equal(r.tests.length, 1, `${d} has a results.json of its own with its one test`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--vm-slots: two itest runs and an itest test share one budget of 2 VMs (ITEST_VM_SLOTS for one of them)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-meson-'));
    try {
      const slots = join(dir, 'slots');
      const env = { FAKE_MKOSI_PLAN: 'slow-exit:123' };
      // Each alone would run 2 VMs at once (--jobs 2): 6 VMs in all, never more than 2 up together.
      const procs = [
        itestProcess(['run', '--test', 'TEST-0[12]-*'], dir, env, [
          '--jobs',
          '2',
          '--vm-slots',
          slots,
          '--output',
          join(dir, 'out-a'),
        ]),
        itestProcess(['run', '--test', 'TEST-0[12]-*'], dir, { ...env, ITEST_VM_SLOTS: slots }, [
          '--jobs',
          '2',
          '--output',
          join(dir, 'out-b'),
        ]),
        itestTest('TEST-01-BASIC', dir, env, ['--jobs', '2', '--vm-slots', slots]),
        itestTest('TEST-02-SKIP', dir, { ...env, ITEST_VM_SLOTS: slots }, ['--jobs', '2']),
      ];
      const ended = await Promise.all(procs.map((p) => p.done));
      ended.forEach((e, i) => assert.equal(e.code, 0, `process ${i}: exit ${e.code}\n${e.out}${e.err}`));
      const ev = await events(dir);
      assert.equal(ev.vms, 6);
      assert.equal(ev.maxConcurrent, 2, 'the shared budget of 2 VMs held across the four processes');
      assert.ok(
        ended.some((e) => /waiting for one of the host's 2 VM slot\(s\)/.test(e.out + e.err)),
        'a process said it waited for a slot',
      );
      // Without the shared slots the same two runs exceed it.
      const alone = join(dir, 'alone');
      await mkdir(alone);
      await Promise.all(
        [0, 1].map(
          (i) =>
            itestProcess(['run', '--test', 'TEST-0[12]-*'], alone, env, [
              '--jobs',
              '2',
              '--output',
              join(alone, `out-${i}`),
            ]).done,
        ),
      );
      assert.ok((await events(alone)).maxConcurrent > 2, 'unshared, the runs count only their own VMs');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exit statuses: fail 1, timeout 1, no status from the guest 99; the failure block, not the report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-meson-'));
    try {
      const [fail, timeout, error] = await Promise.all([
        itestTest('TEST-01-BASIC', dir, { FAKE_MKOSI_PLAN: 'exit:1' }).done,
        itestTest('TEST-02-SKIP', dir, { FAKE_MKOSI_PLAN: 'hang' }, ['--timeout', '2']).done,
        itestTest('TEST-03-EXPECTED-FAIL', dir, { FAKE_MKOSI_PLAN: 'exit:0', FAKE_MKOSI_SERIAL: '0' }).done,
      ]);
      assert.equal(fail.code, 1, fail.out + fail.err);
      assert.match(fail.out, /^--- TEST-01-BASIC \(fail\): /m);
      assert.match(fail.out, /journal: journalctl --file \S+\/out\/TEST-01-BASIC\/TEST-01-BASIC\.journal/);
      assert.doesNotMatch(fail.out, /^Results:/m, 'not the whole report');
      assert.equal(timeout.code, 1, timeout.out + timeout.err);
      assert.match(timeout.out, /--- TEST-02-SKIP \(timeout\): no result within 2 s/);
      assert.equal(error.code, 99, error.out + error.err);
      assert.match(error.out, /--- TEST-03-EXPECTED-FAIL \(error\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('--tap: TAP on stdout (progress on stderr), exit 0 for a failure, 99 and Bail out! for an error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-meson-'));
    try {
      const [pass, fail, bad] = await Promise.all([
        itestTest('TEST-01-BASIC', dir, { FAKE_MKOSI_PLAN: 'exit:123' }, ['--tap']).done,
        itestTest('TEST-02-SKIP', dir, { FAKE_MKOSI_PLAN: 'exit:1' }, ['--tap']).done,
        itestTest('TEST-03-EXPECTED-FAIL', dir, { FAKE_MKOSI_PLAN: 'exit:0', FAKE_MKOSI_SERIAL: '0' }, [
          '--tap',
        ]).done,
      ]);
      assert.equal(pass.code, 0, pass.err);
      assert.deepEqual(
        readTap(pass.out).points.map((p) => [p.ok, p.desc]),
        [[true, 'TEST-01-BASIC']],
      );
      assert.match(pass.err, /\[1\/1\] PASS/);
      assert.equal(fail.code, 0, fail.err);
      assert.deepEqual(
        readTap(fail.out).points.map((p) => p.ok),
        [false],
      );
      assert.match(fail.out, /^# --- TEST-02-SKIP \(fail\)/m, 'the failure block as TAP comments');
      assert.equal(bad.code, 99, bad.err);
      assert.match(readTap(bad.out).bail!, /TEST-03-EXPECTED-FAIL/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("SIGTERM, then SIGKILL 0.5 s later (meson's timeout): gone in time, console log and journal stream kept, no VM left", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-meson-'));
    try {
      // A mkosi that does not end on SIGTERM: itest cannot wait for it and must leave in time all the same.
      const p = itestTest('TEST-01-BASIC', dir, {
        FAKE_MKOSI_PLAN: 'hang',
        FAKE_MKOSI_CHILD: join(dir, 'child'),
        STANDIN_IGNORE_TERM: '1',
      });
      for (let i = 0; i < 300 && !existsSync(join(dir, 'child')); i++)
        await new Promise((r) => setTimeout(r, 100));
      assert.ok(existsSync(join(dir, 'child')), 'the VM came up');
      const t0 = performance.now();
      process.kill(-p.pid, 'SIGTERM');
      const killer = setTimeout(() => {
        try {
          process.kill(-p.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }, 500);
      const e = await p.done;
      clearTimeout(killer);
      assert.equal(
        e.signal,
        null,
        `exited by itself within 0.5 s (${Math.round(performance.now() - t0)} ms)`,
      );
      assert.equal(e.code, 99);
      const out = join(dir, 'out', 'TEST-01-BASIC');
      assert.match(
        readFileSync(join(out, 'TEST-01-BASIC.console.log'), 'utf8'),
        /fake console: booting TEST-01-BASIC/,
      );
      assert.match(
        readFileSync(join(out, 'TEST-01-BASIC.journal.export'), 'utf8'),
        /MESSAGE=TEST-01-BASIC.service: hello from the fake guest/,
        'the serial journal stream beside the console log, not only in .work/',
      );
      const grandchild = Number(readFileSync(join(dir, 'child'), 'utf8'));
      await new Promise((r) => setTimeout(r, 300));
      assert.throws(() => process.kill(grandchild, 0), /ESRCH/, "the VM's tree is gone");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A KVM that lies: detection (QEMU's real words, captured on a host whose /dev/kvm pauses the guest), the
 * boot probe and the attempt loop's switch to TCG. The attempt loop runs real processes: the mkosi stand-in
 * (test/fixtures/fake-mkosi.mjs) starting the QEMU stand-in (test/fixtures/fake-qemu.mjs), which behaves as
 * QEMU did on such a host (prints the error, keeps running, QMP answers `internal-error`), because most
 * machines are not of that kind (test/e2e/demo.test.ts runs the real QEMU and kernel on whatever kind
 * the machine is).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findAccelFailure, describeAccelFailure } from '../../src/qemu/accel-failure.ts';
import { fallBackToTcg, HostNotReady, TCG_TIMEOUT_SCALE } from '../../src/host/decide.ts';
import { findProbeKernel, probeKvmBoot } from '../../src/host/kvm-boot-probe.ts';
import { emptyMachineRuns } from '../../src/host/probe.ts';
import { VerdictCache, currentBootId } from '../../src/host/verdict-cache.ts';
import { executeTest } from '../../src/run/execute-test.ts';
import { standinContext } from '../helpers/standin.ts';
import { Accelerator } from '../../src/run/accelerator.ts';
import { classify } from '../../src/results/classify.ts';
import { accelFallbackNote, type RawRun } from '../../src/results/model.ts';
import { hostSetup, testSpec } from '../helpers/spec.ts';
import type { TestSpec } from '../../src/config/test-spec.ts';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const FAKE_QEMU = join(FIXTURES, 'fake-qemu.mjs');
const REAL_CONSOLE = readFileSync(join(FIXTURES, 'kvm-internal-error.txt'), 'utf8');

const kvmPlan = () =>
  hostSetup({ accel: 'kvm', accelDetail: '/dev/kvm opens and runs a vCPU', timeoutScale: 1, defaultCpus: 2 });

describe('what a broken KVM looks like', () => {
  it("finds QEMU's own line in the console of a real paused guest", () => {
    const f = findAccelFailure(REAL_CONSOLE.split('\n'));
    assert.deepEqual(f, { line: 'KVM internal error. Suberror: 1', effect: 'paused' });
    assert.match(
      describeAccelFailure(f!, 5.04),
      /paused the guest 5\.0 s after start with `KVM internal error/,
    );
  });

  it('tells pausing messages from exiting ones, and ignores a healthy console', () => {
    const cases: [string, 'paused' | 'exited' | undefined][] = [
      ['error: kvm run failed Bad address', 'paused'],
      ['KVM: entry failed, hardware error 0x80000021', 'paused'],
      ['qemu-system-x86_64: error: failed to set MSR 0x48f to 0x7fefff00036dfb', 'exited'],
      [
        "qemu-system-x86_64: ../target/i386/kvm/kvm.c:3094: kvm_buf_set_msrs: Assertion `ret == cpu->kvm_msr_buf->nmsrs' failed.",
        'exited',
      ],
      ['qemu-system-x86_64: failed to initialize kvm: Permission denied', 'exited'],
      ['[    0.000000] Linux version 6.12.57+deb13-cloud-amd64', undefined],
      ['TEST-01-BASIC: KVM internal errors are a thing, said the test', undefined],
      ['Kernel panic - not syncing: VFS: Unable to mount root fs', undefined],
    ];
    for (const [line, effect] of cases) assert.equal(findAccelFailure([line])?.effect, effect, line);
  });

  it('classifies a VM stopped for a broken KVM as an infrastructure error, never a timeout or failure', () => {
    const raw: RawRun = {
      exitCode: null,
      signal: 'SIGKILL',
      timedOut: false,
      consoleTail: REAL_CONSOLE.split('\n'),
      transport: 'serial',
      accel: 'kvm',
      durationMs: 6000,
      accelFailure: { line: 'KVM internal error. Suberror: 1', effect: 'paused', afterSeconds: 5.2 },
    };
    const o = classify(raw, { exitStatus: 123, skipStatus: 77, shouldFail: true }, 30);
    assert.equal(o.status, 'error');
    assert.equal(o.infra, true);
    assert.match(o.reason, /^KVM failed: QEMU paused the guest 5\.2 s after start/);
    const abandoned = classify({ ...raw, accelFailure: undefined, accelAbandoned: true }, raw as never, 30);
    assert.match(abandoned.reason, /another VM showed KVM broken/);
  });
});

describe('falling back to TCG', () => {
  const fb = {
    detectedBy: 'vm' as const,
    reason: 'QEMU paused the guest',
    qemuLine: 'KVM internal error. Suberror: 1',
  };

  it('gives TCG its timeout scale and one vCPU, unless a scale was given', () => {
    const p = fallBackToTcg(kvmPlan(), { transport: 'auto', kvm: 'auto' }, fb);
    assert.equal(p.accel, 'tcg');
    assert.equal(p.timeoutScale, TCG_TIMEOUT_SCALE);
    assert.equal(p.defaultCpus, 1);
    assert.match(p.accelDetail, /KVM is broken on this host \(QEMU paused the guest\); fell back/);
    assert.equal(
      fallBackToTcg(kvmPlan(), { transport: 'auto', kvm: 'auto', timeoutScale: 1.5 }, fb).timeoutScale,
      1.5,
    );
  });

  it('refuses with kvm yes: the host is not ready, naming the setting as the user wrote it', () => {
    for (const [door, words] of [
      ['cli', /KVM was required \(--kvm yes\).*or use --kvm auto/],
      ['action', /KVM was required \(input `kvm: yes`\).*or use input `kvm: auto`/],
    ] as const)
      assert.throws(
        () => fallBackToTcg(kvmPlan(), { transport: 'auto', kvm: 'yes', door }, fb),
        (e: unknown) => e instanceof HostNotReady && words.test(e.message),
      );
  });

  it('switches once, fires the switch signal, and reports it loudly in every renderer', () => {
    const seen: string[] = [];
    const acc = new Accelerator(kvmPlan(), { transport: 'auto', kvm: 'auto' }, (f) => seen.push(f.reason));
    assert.equal(acc.broken(fb), 'rerun');
    assert.equal(acc.broken({ ...fb, reason: 'second' }), 'rerun');
    assert.deepEqual(seen, ['QEMU paused the guest']);
    assert.equal(acc.switchedSignal.aborted, true);
    assert.equal(acc.stopSignal.aborted, false);
    assert.deepEqual(acc.now, { accel: 'tcg', timeoutScale: 3, defaultCpus: 1 });
    const note = accelFallbackNote({
      timeoutScale: 3,
      accelFallback: { ...fb, test: 'T', rerun: ['T', 'U'] },
    });
    assert.match(
      note!,
      /KVM is broken on this host.*TCG, timeouts x3.*the VM of T.*QEMU said: KVM internal error.*rerun under TCG: T, U/,
    );
  });
});

async function context(over: { plan: string; kvm: 'auto' | 'yes'; accelerator?: Accelerator }) {
  const accelerator = over.accelerator ?? new Accelerator(kvmPlan(), { transport: 'vsock', kvm: over.kvm });
  const argvs: string[][] = [];
  const { ctx, out } = await standinContext({
    plan: over.plan,
    accelerator,
    env: { FAKE_QEMU_DELAY_MS: '800' },
    signal: accelerator.stopSignal,
    onAttemptStart: (_s, _n, argv) => argvs.push(argv),
  });
  return { ctx, accelerator, argvs, out };
}

describe('the attempt loop on a host whose KVM pauses the guest (stand-ins for mkosi and QEMU)', () => {
  it('stops the VM within seconds, reruns it under TCG and passes, without using a retry', async () => {
    const { ctx, accelerator, argvs, out } = await context({ plan: 'kvm-pause,exit:123', kvm: 'auto' });
    const t0 = performance.now();
    const r = await executeTest(testSpec({ timeout: 60, retries: 0, infraRetries: 0 }), ctx, 0);
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.status, 'pass', r.reason);
    assert.deepEqual(
      r.attempts.map((a) => [a.accel, a.status]),
      [
        ['kvm', 'error'],
        ['tcg', 'pass'],
      ],
    );
    const first = r.attempts[0]!;
    assert.match(
      first.reason,
      /^KVM failed: QEMU paused the guest [\d.]+ s after start with `KVM internal error\. Suberror: 1`.*; rerunning under TCG$/,
    );
    assert.ok(seconds < 15, `took ${seconds} s against a 60 s timeout`);
    assert.ok(argvs[0]!.includes('--kvm=yes') && argvs[0]!.includes('--cpus=2'), argvs[0]!.join(' '));
    assert.ok(argvs[1]!.includes('--kvm=no') && argvs[1]!.includes('--cpus=1'), argvs[1]!.join(' '));
    assert.equal(accelerator.fallback?.detectedBy, 'vm');
    assert.equal(accelerator.fallback?.qemuLine, 'KVM internal error. Suberror: 1');
    // The paused attempt's console stays on disk, with QEMU's words in it.
    assert.match(await readFile(first.files.console!, 'utf8'), /KVM internal error\. Suberror: 1/);
    assert.ok((await readdir(out)).includes('T.attempt-1.console.log'));
  });

  it('gives the TCG rerun the TCG timeout scale: the timeout keeps meaning guest time', async () => {
    // 2 s under KVM (the stand-in pauses after 0.8 s), so 6 s under TCG.
    const { ctx } = await context({ plan: 'kvm-pause,hang', kvm: 'auto' });
    const r = await executeTest(testSpec({ timeout: 2, retries: 0, infraRetries: 0 }), ctx, 0);
    assert.equal(r.status, 'timeout');
    assert.match(r.reason, new RegExp(`no result within ${2 * TCG_TIMEOUT_SCALE} s`));
  });

  it("QEMU's words on the guest's console are the test's, not the host's: no fallback", async () => {
    // A test that runs QEMU inside the guest (systemd's own do) prints them; only QEMU's stderr counts.
    const { ctx, accelerator } = await context({ plan: 'noisy-exit:123', kvm: 'auto' });
    const r = await executeTest(testSpec({ retries: 0, infraRetries: 0 }), ctx, 0);
    assert.equal(r.status, 'pass', r.reason);
    assert.deepEqual(
      r.attempts.map((a) => a.accel),
      ['kvm'],
    );
    assert.equal(accelerator.fallback, undefined);
    assert.match(await readFile(r.files.console!, 'utf8'), /KVM internal error\. Suberror: 1/);
  });

  it('an aborting QEMU under KVM is the accelerator too, not a failed test', async () => {
    const { ctx } = await context({ plan: 'kvm-abort,exit:123', kvm: 'auto' });
    const r = await executeTest(testSpec({ retries: 0, infraRetries: 0 }), ctx, 0);
    assert.equal(r.status, 'pass', r.reason);
    assert.match(
      r.attempts[0]!.reason,
      /^KVM failed: QEMU stopped [\d.]+ s after start with `qemu-system-x86_64: error: failed to set MSR/,
    );
  });

  it('kvm yes: no rerun, the run is told to stop', async () => {
    const { ctx, accelerator } = await context({ plan: 'kvm-pause,exit:123', kvm: 'yes' });
    const r = await executeTest(testSpec({ retries: 2, infraRetries: 2 }), ctx, 0);
    assert.equal(r.status, 'error');
    assert.equal(r.attempts.length, 1);
    assert.ok(accelerator.fatal instanceof HostNotReady);
    assert.equal(accelerator.stopSignal.aborted, true);
  });

  it('a VM still running under KVM when another one shows KVM broken is stopped at once and rerun', async () => {
    const accelerator = new Accelerator(kvmPlan(), { transport: 'vsock', kvm: 'auto' });
    // One VM pauses after 0.8 s; the other boots under KVM into a test that would take 1000 s.
    const a = await context({ plan: 'kvm-pause,exit:123', kvm: 'auto', accelerator });
    const b = await context({ plan: 'hang,exit:123', kvm: 'auto', accelerator });
    const spec = (name: string): TestSpec =>
      testSpec({ name, unit: `${name}.service`, timeout: 600, retries: 0, infraRetries: 0 });
    const t0 = performance.now();
    const [ra, rb] = await Promise.all([executeTest(spec('A'), a.ctx, 0), executeTest(spec('B'), b.ctx, 0)]);
    assert.ok((performance.now() - t0) / 1000 < 20);
    assert.equal(ra.status, 'pass', ra.reason);
    assert.equal(rb.status, 'pass', rb.reason);
    assert.match(rb.attempts[0]!.reason, /another VM showed KVM broken/);
    assert.deepEqual(
      rb.attempts.map((x) => x.accel),
      ['kvm', 'tcg'],
    );
  });
});

describe('the boot probe', () => {
  it('finds the split kernel mkosi writes, and a directory image kernel', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-kernel-'));
    await writeFile(join(dir, 'image.raw'), '');
    await writeFile(join(dir, 'image.vmlinuz'), 'k');
    assert.equal(await findProbeKernel(dir), join(dir, 'image.vmlinuz'));
    const tree = await mkdtemp(join(tmpdir(), 'itest-kernel-'));
    await mkdir(join(tree, 'image/usr/lib/modules/6.1.0-1-amd64'), { recursive: true });
    await writeFile(join(tree, 'image/usr/lib/modules/6.1.0-1-amd64/vmlinuz'), 'k');
    assert.equal(await findProbeKernel(tree), join(tree, 'image/usr/lib/modules/6.1.0-1-amd64/vmlinuz'));
  });

  /** The QEMU stand-in as an executable, pausing (the default) or aborting under KVM. */
  async function standIn(mode: 'pause' | 'abort' | 'oom'): Promise<{ qemu: string; kernel: string }> {
    const dir = await mkdtemp(join(tmpdir(), 'itest-probe-'));
    const kernel = join(dir, 'k.vmlinuz');
    await writeFile(kernel, 'not really a kernel: the stand-in never runs it');
    const qemu = join(dir, 'qemu-system-x86_64');
    await writeFile(
      qemu,
      `#!/bin/sh\nFAKE_QEMU_DELAY_MS=500 FAKE_QEMU_KVM=${mode} exec ${process.execPath} ${FAKE_QEMU} "$@"\n`,
    );
    await chmod(qemu, 0o755);
    return { qemu, kernel };
  }

  it('the empty-machine probe sees an aborting QEMU, and is fooled by a pausing one (why the boot probe exists)', async () => {
    const abort = await emptyMachineRuns((await standIn('abort')).qemu);
    assert.equal(abort.usable, false);
    assert.match(
      abort.detail,
      /QEMU cannot run a vCPU with it \(qemu-system-x86_64: error: failed to set MSR/,
    );
    assert.equal((await emptyMachineRuns((await standIn('pause')).qemu)).usable, true);
  });

  it('the boot probe says broken when QEMU aborts at the first vCPU run (QEMU stand-in)', async () => {
    const v = await probeKvmBoot(await standIn('abort'));
    assert.equal(v.usable, false);
    assert.equal(v.failure?.effect, 'exited');
    assert.match(
      v.detail,
      /QEMU stopped [\d.]+ s after start with `qemu-system-x86_64: error: failed to set MSR/,
    );
  });

  it('a QEMU that fails for another reason is inconclusive: KVM is kept and watched, nothing remembered', async () => {
    const v = await probeKvmBoot(await standIn('oom'));
    assert.equal(v.usable, true);
    assert.equal(v.conclusive, false);
    assert.match(v.detail, /inconclusive, QEMU exited \(qemu-system-x86_64: cannot set up guest memory/);
    const empty = await emptyMachineRuns((await standIn('oom')).qemu);
    assert.equal(empty.usable, false);
    assert.equal(empty.conclusive, false, 'not remembered for the host boot');
  });

  it("says broken when QEMU pauses on the kernel's first instructions (QEMU stand-in)", async () => {
    const v = await probeKvmBoot(await standIn('pause'));
    assert.equal(v.usable, false);
    assert.equal(v.failure?.line, 'KVM internal error. Suberror: 1');
    assert.ok(v.seconds < 5, `${v.seconds} s`);
    assert.match(
      v.detail,
      /booted the image's kernel \(k\.vmlinuz\) under KVM with no root file system: QEMU paused the guest/,
    );
  });

  it('remembers verdicts for this host boot only, and never writes through a planted link', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-verdicts-'));
    const c = new VerdictCache(dir, await currentBootId());
    assert.equal(await c.get('k'), undefined);
    await c.set('k', { usable: false, detail: 'd', qemuLine: 'q', seconds: 4.5, at: 'now' });
    assert.equal((await c.get('k'))?.qemuLine, 'q');
    assert.equal(await new VerdictCache(dir, 'another-boot').get('k'), undefined);
    // A link planted where the cache file goes is replaced, and what it pointed to is left alone.
    const victim = join(dir, 'victim');
    await writeFile(victim, 'precious');
    const file = join(dir, 'host', 'accel-verdicts.json');
    await rm(file);
    await symlink(victim, file);
    await c.set('k2', { usable: true, detail: 'd', seconds: 1, at: 'now' });
    assert.equal(await readFile(victim, 'utf8'), 'precious');
    assert.equal((await lstat(file)).isSymbolicLink(), false);
    assert.equal((await c.get('k2'))?.usable, true);
  });
});

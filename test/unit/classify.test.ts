import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { classify, parseStatusLine } from '../../src/results/classify.ts';
import type { Expectation } from '../../src/results/model.ts';
import { raw } from '../helpers/raw-run.ts';

const exp: Expectation = { exitStatus: 123, skipStatus: 77, shouldFail: false };
const line = (result: string, code: string, status: string) =>
  `SERVICE_RESULT=${result} EXIT_CODE=${code} EXIT_STATUS=${status}`;

describe('classification', () => {
  it('parses status lines, including empty EXIT_STATUS and the emergency marker', () => {
    assert.deepEqual(parseStatusLine(line('exit-code', 'exited', '1')), {
      serviceResult: 'exit-code',
      exitCode: 'exited',
      exitStatus: '1',
    });
    assert.deepEqual(parseStatusLine('SERVICE_RESULT=success EXIT_CODE= EXIT_STATUS='), {
      serviceResult: 'success',
    });
    assert.deepEqual(parseStatusLine('EMERGENCY=1'), { emergency: true });
    assert.equal(parseStatusLine('garbage'), undefined);
    assert.equal(parseStatusLine(undefined), undefined);
  });

  it('passes only with a positive status from the guest', () => {
    const o = classify(raw({ statusLines: [line('success', 'exited', '0')] }), exp, 60);
    assert.equal(o.status, 'pass');
    assert.equal(o.guestStatus, 123);
  });

  it('mkosi exit 0 without any status is an error, never a pass', () => {
    const o = classify(raw(), exp, 60);
    assert.equal(o.status, 'error');
    assert.match(o.reason, /without reporting a test status/);
    assert.equal(o.infra, true);
  });

  it('fails with the exit status, skips on 77, respects a custom skip status', () => {
    const f = classify(raw({ statusLines: [line('exit-code', 'exited', '1')] }), exp, 60);
    assert.equal(f.status, 'fail');
    assert.equal(f.guestStatus, 1);
    assert.match(f.reason, /exit status 1, expected 123/);
    assert.equal(classify(raw({ statusLines: [line('exit-code', 'exited', '77')] }), exp, 60).status, 'skip');
    assert.equal(
      classify(raw({ statusLines: [line('exit-code', 'exited', '77')] }), { ...exp, skipStatus: 78 }, 60)
        .status,
      'fail',
    );
    assert.equal(
      classify(raw({ statusLines: [line('exit-code', 'exited', '78')] }), { ...exp, skipStatus: 78 }, 60)
        .status,
      'skip',
    );
  });

  it('a signal-killed unit is a failure with the signal in the reason', () => {
    const o = classify(raw({ statusLines: [line('core-dump', 'dumped', 'SEGV')] }), exp, 60);
    assert.equal(o.status, 'fail');
    assert.match(o.reason, /core-dump.*dumped.*SEGV/);
  });

  it('should-fail inverts pass and fail but not skip or errors', () => {
    const sf = { ...exp, shouldFail: true };
    assert.equal(classify(raw({ statusLines: [line('exit-code', 'exited', '1')] }), sf, 60).status, 'pass');
    const p = classify(raw({ statusLines: [line('success', 'exited', '0')] }), sf, 60);
    assert.equal(p.status, 'fail');
    assert.match(p.reason, /expected to fail/);
    assert.equal(classify(raw({ statusLines: [line('exit-code', 'exited', '77')] }), sf, 60).status, 'skip');
    assert.equal(classify(raw(), sf, 60).status, 'error');
  });

  it('a custom expected exit status passes on that status only', () => {
    const e = { ...exp, exitStatus: 3 };
    assert.equal(classify(raw({ statusLines: [line('exit-code', 'exited', '3')] }), e, 60).status, 'pass');
    assert.equal(classify(raw({ statusLines: [line('success', 'exited', '0')] }), e, 60).status, 'fail');
  });

  it('vsock: mkosi exit code carries the guest status; 0 and 247 carry none', () => {
    const v = (code: number) => classify(raw({ transport: 'vsock', exitCode: code }), exp, 60);
    assert.equal(v(123).status, 'pass');
    assert.equal(v(77).status, 'skip');
    assert.equal(v(1).status, 'fail');
    assert.equal(v(0).status, 'error');
    const killed = v(247);
    assert.equal(killed.status, 'error');
    assert.equal(killed.infra, true);
    assert.match(killed.reason, /QEMU was killed/);
  });

  it("vsock-user: PID 1's EXIT_STATUS= over the notify socket is the verdict; the status line is context", () => {
    const pass = classify(
      raw({ transport: 'vsock-user', notify: { exitStatus: 123, messages: 5 } }),
      exp,
      60,
    );
    assert.deepEqual([pass.status, pass.guestStatus, pass.reason], ['pass', 123, 'unit succeeded']);
    const fail = classify(
      raw({
        transport: 'vsock-user',
        notify: { exitStatus: 1, messages: 5 },
        statusLines: [line('exit-code', 'exited', '1')],
      }),
      exp,
      60,
    );
    assert.equal(fail.status, 'fail');
    assert.match(fail.reason, /guest exit status 1 over vsock; the unit: SERVICE_RESULT=exit-code/);
    // A status line saying success does not outvote PID 1 (issue 17: a unit's line is never the verdict).
    const outvoted = classify(
      raw({
        transport: 'vsock-user',
        notify: { exitStatus: 1, messages: 5 },
        statusLines: [line('success', 'exited', '0')],
      }),
      exp,
      60,
    );
    assert.equal(outvoted.status, 'fail');
    // No EXIT_STATUS= (READY=1 only): the status line still explains the end.
    const lineOnly = classify(
      raw({
        transport: 'vsock-user',
        notify: { messages: 1 },
        statusLines: [line('success', 'exited', '0')],
      }),
      exp,
      60,
    );
    assert.equal(lineOnly.status, 'pass');
  });

  it('vsock-user: a device that never started, or died with no status, is its own infrastructure error', () => {
    const never = classify(
      raw({
        transport: 'vsock-user',
        exitCode: null,
        transportError: 'the user-space vsock device did not start: vhost-device-vsock exited (1)',
      }),
      exp,
      60,
    );
    assert.deepEqual(
      [never.status, never.infra, never.reason],
      ['error', true, 'the user-space vsock device did not start: vhost-device-vsock exited (1)'],
    );
    const died = classify(
      raw({
        transport: 'vsock-user',
        exitCode: 0,
        notify: { messages: 1 },
        transportError: 'vhost-device-vsock exited (SIGKILL) while the VM ran: no message',
      }),
      exp,
      60,
    );
    assert.equal(died.status, 'error');
    assert.match(
      died.reason,
      /^no status from the guest: vhost-device-vsock exited \(SIGKILL\) while the VM ran/,
    );
    // With the guest's status over the serial status port, the test still gets its verdict.
    const stillJudged = classify(
      raw({
        transport: 'vsock-user',
        statusLines: [line('success', 'exited', '0')],
        transportError: 'vhost-device-vsock exited (SIGKILL) while the VM ran: no message',
      }),
      exp,
      60,
    );
    assert.equal(stillJudged.status, 'pass');
  });

  it("PID 1's exit status (mkosi's exit code on vsock) wins over the unit's line, which may be its killing", () => {
    const killed = classify(
      raw({ transport: 'vsock', exitCode: 123, statusLines: [line('signal', 'killed', 'TERM')] }),
      exp,
      60,
    );
    assert.equal(killed.status, 'pass', killed.reason);
    const o = classify(
      raw({ transport: 'vsock', exitCode: 1, statusLines: [line('success', 'exited', '0')] }),
      exp,
      60,
    );
    assert.equal(o.status, 'fail');
    assert.match(o.reason, /guest exit status 1 over vsock; the unit: SERVICE_RESULT=success/);
  });

  it('timeouts, cancels and launch errors have their own outcomes', () => {
    const t = classify(raw({ timedOut: true, statusLines: [line('success', 'exited', '0')] }), exp, 90);
    assert.equal(t.status, 'timeout');
    assert.match(t.reason, /90 s/);
    const h = classify(raw({ timedOut: true, hangReport: 'sent SysRq-T (task dump)' }), exp, 90);
    assert.match(h.reason, /; sent SysRq-T \(task dump\)$/);
    assert.equal(classify(raw({ cancelled: true }), exp, 60).status, 'error');
    const l = classify(raw({ launchError: 'mkosi: spawn mkosi ENOENT', exitCode: null }), exp, 60);
    assert.equal(l.status, 'error');
    assert.equal(l.infra, false);
    assert.match(l.reason, /could not start mkosi/);
  });

  it('an empty or unreadable journal turns a pass into an infrastructure error', () => {
    const o = classify(raw({ statusLines: [line('success', 'exited', '0')], journalEntries: 0 }), exp, 60);
    assert.equal(o.status, 'error');
    assert.match(o.reason, /journal transport lost.*unit succeeded/);
    assert.equal(o.infra, true);
    const u = classify(
      raw({
        statusLines: [line('success', 'exited', '0')],
        journalEntries: 0,
        journalError: 'cannot read x',
      }),
      exp,
      60,
    );
    assert.match(u.reason, /journal unusable: cannot read x/);
  });

  it('recognises a kernel panic and emergency mode from console and status port', () => {
    const p = classify(
      raw({
        consoleTail: [
          '[ 1.0] foo',
          '[ 2.0] Kernel panic - not syncing: VFS: Unable to mount root fs',
          '[ 2.1] ---[ end',
        ],
      }),
      exp,
      60,
    );
    assert.equal(p.status, 'error');
    assert.match(p.reason, /kernel panic: VFS: Unable to mount root fs/);
    assert.equal(p.infra, false);
    const e = classify(raw({ statusLines: ['EMERGENCY=1'] }), exp, 60);
    assert.match(e.reason, /emergency mode/);
  });

  it('a signal on mkosi or a non-zero mkosi exit without status is an error (retried unless mkosi said why)', () => {
    const s = classify(raw({ exitCode: null, signal: 'SIGKILL' }), exp, 60);
    assert.equal(s.status, 'error');
    assert.equal(s.infra, true);
    const m = classify(raw({ exitCode: 1, consoleTail: ['‣ Image has not been built yet', ''] }), exp, 60);
    assert.match(m.reason, /mkosi failed with exit status 1.*not been built/);
  });
});

describe('classification: mkosi failing before the guest reports (real mkosi output)', () => {
  const fixture = (name: string) =>
    readFileSync(new URL(`../fixtures/mkosi-errors/${name}`, import.meta.url), 'utf8').split('\n');

  it("names mkosi's own error, not its last line, and does not retry one that would recur", () => {
    const o = classify(
      raw({ exitCode: 1, journalEntries: 0, consoleTail: fixture('mkosi27-vm-missing-pefile.console.log') }),
      exp,
      60,
    );
    assert.equal(o.status, 'error');
    assert.equal(
      o.reason,
      `mkosi failed with exit status 1 and no test status: ModuleNotFoundError: No module named 'pefile' ("/usr/bin/python3" returned non-zero exit code 1)`,
    );
    assert.equal(o.infra, false);
    const usage = classify(
      raw({ exitCode: 2, consoleTail: fixture('mkosi24-unknown-option.console.log') }),
      exp,
      60,
    );
    assert.match(usage.reason, /: mkosi: error: unrecognized arguments: --no-such-option$/);
    assert.equal(usage.infra, false);
  });

  it('a failure that may pass next time stays a retryable infrastructure error', () => {
    const o = classify(
      raw({ exitCode: 1, consoleTail: fixture('mkosi27-qemu-backing-store.console.log') }),
      exp,
      60,
    );
    assert.match(o.reason, /no test status: qemu-system-x86_64: can't open backing store/);
    assert.equal(o.infra, true);
  });

  it('output it does not recognise: the last line, retried as before', () => {
    const o = classify(
      raw({ exitCode: 1, consoleTail: ['starting', 'something odd happened', ''] }),
      exp,
      60,
    );
    assert.equal(o.reason, 'mkosi failed with exit status 1 and no test status: something odd happened');
    assert.equal(o.infra, true);
  });
});

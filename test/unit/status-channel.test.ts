import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeBoots, readStatusChannel } from '../../src/results/status-channel.ts';
import { classify } from '../../src/results/classify.ts';
import { raw } from '../helpers/raw-run.ts';

// The status port of a real run (demo image, systemd 257, serial): the test unit reboots, soft-reboots,
// then makes PID 1 exit 42 (`systemd-run --wait -p FailureAction=exit -p FailureActionExitStatus=42 false`).
const BOOT1 = 'ITEST_BOOT=23646c66-e559-472c-9818-53a6c4d62ae2';
const BOOT2 = 'ITEST_BOOT=16b625e5-b212-45ce-809a-f75e674f3050';
const TERM = 'SERVICE_RESULT=signal EXIT_CODE=killed EXIT_STATUS=TERM';
const MULTI_BOOT = [
  BOOT1,
  TERM,
  'ITEST_SHUTDOWN=reboot MANAGER_EXIT_CODE=0',
  BOOT2,
  TERM,
  'ITEST_SHUTDOWN=soft-reboot MANAGER_EXIT_CODE=0',
  BOOT2,
  TERM,
  'ITEST_SHUTDOWN=poweroff MANAGER_EXIT_CODE=42',
];

const exp = { exitStatus: 123, skipStatus: 77, shouldFail: false };

describe('the status channel over several boots (pure)', () => {
  it('counts boots and soft reboots by boot id; the verdict is the last stop, the unit lines are context', () => {
    const c = readStatusChannel(MULTI_BOOT);
    assert.equal(c.boots, 3);
    assert.equal(c.softReboots, 1);
    assert.deepEqual(c.final, { shutdown: 'poweroff', exitCode: 42 });
    assert.equal(c.unitLine, TERM);
    assert.equal(describeBoots(c), '3 boots (1 reboot, 1 soft reboot)');
    assert.equal(describeBoots({ boots: 1, softReboots: 0 }), undefined);
  });

  it('PID 1 exiting with the expected status passes on serial, whatever the unit it killed said', () => {
    const o = classify(raw({ statusLines: MULTI_BOOT }), { ...exp, exitStatus: 42 }, 60);
    assert.equal(o.status, 'pass', o.reason);
    assert.equal(o.guestStatus, 42);
    assert.equal(o.reason, 'exit status 42 as expected [3 boots (1 reboot, 1 soft reboot)]');
  });

  it('a deliberate poweroff is a failure with its reason when the test did not say so', () => {
    const lines = [BOOT1, TERM, 'ITEST_SHUTDOWN=poweroff MANAGER_EXIT_CODE=0'];
    const o = classify(raw({ statusLines: lines }), exp, 60);
    assert.equal(o.status, 'fail');
    assert.equal(
      o.reason,
      `exit status 0, expected 123 (the guest powered off with exit status 0; the unit: ${TERM})`,
    );
    assert.equal(classify(raw({ statusLines: lines }), { ...exp, exitStatus: 0 }, 60).status, 'pass');
  });

  it('a unit line from before a reboot is never the verdict: a VM that ends rebooting is an error', () => {
    const lines = [
      BOOT1,
      'SERVICE_RESULT=success EXIT_CODE=exited EXIT_STATUS=0',
      'ITEST_SHUTDOWN=reboot MANAGER_EXIT_CODE=0',
    ];
    const c = readStatusChannel(lines);
    assert.equal(c.unit, undefined);
    assert.deepEqual(c.endedRebooting, { shutdown: 'reboot', exitCode: 0 });
    const o = classify(raw({ statusLines: lines }), exp, 60);
    assert.equal(o.status, 'error');
    assert.match(o.reason, /^the VM ended while the guest was rebooting \(reboot\)/);
    assert.equal(o.infra, true);
  });

  it('vsock-user: the notify socket decides, the status port counts the boots', () => {
    const o = classify(
      raw({ transport: 'vsock-user', statusLines: MULTI_BOOT, notify: { exitStatus: 42, messages: 200 } }),
      { ...exp, exitStatus: 42 },
      60,
    );
    assert.equal(o.status, 'pass');
    assert.match(o.reason, /\[3 boots/);
  });

  it("123 from PID 1 after the unit was killed is a pass, but not called the unit's success (TEST-18's way)", () => {
    const lines = [BOOT1, TERM, 'ITEST_SHUTDOWN=reboot MANAGER_EXIT_CODE=0', BOOT2, TERM];
    const o = classify(
      raw({ transport: 'vsock-user', statusLines: lines, notify: { exitStatus: 123, messages: 9 } }),
      exp,
      60,
    );
    assert.equal(o.status, 'pass');
    assert.equal(o.reason, 'exit status 123 as expected [2 boots (1 reboot)]');
  });

  it('emergency mode in the last boot is an error, even when the emergency exit set a status', () => {
    const lines = [BOOT1, TERM, 'ITEST_SHUTDOWN=reboot MANAGER_EXIT_CODE=0', 'EMERGENCY=1'];
    const o = classify(raw({ statusLines: lines, notify: { exitStatus: 1, messages: 3 } }), exp, 60);
    assert.equal(o.status, 'error');
    assert.match(o.reason, /emergency mode/);
    // An EMERGENCY line of an earlier boot is history.
    assert.equal(readStatusChannel(['EMERGENCY=1', BOOT1]).emergency, false);
  });

  it('a guest that went down without a shutdown after its report ran fails (poweroff -ff), not retried', () => {
    const o = classify(raw({ statusLines: [`${BOOT1} ITEST_HOOK=ok`] }), exp, 60);
    assert.equal(o.status, 'fail');
    assert.equal(o.infra, false);
    assert.match(o.reason, /^the guest powered off without shutting down/);
    // Nothing from the guest at all: the channel is in doubt, an infrastructure error as before.
    assert.equal(classify(raw({}), exp, 60).infra, true);
  });

  it('a guest whose manager report never ran falls back to the unit line (older images, early crashes)', () => {
    const o = classify(
      raw({ statusLines: ['SERVICE_RESULT=success EXIT_CODE=exited EXIT_STATUS=0'] }),
      exp,
      60,
    );
    assert.equal(o.status, 'pass');
    assert.equal(o.reason, 'unit succeeded');
    assert.equal(readStatusChannel(['ITEST_SHUTDOWN=exit MANAGER_EXIT_CODE=x']).final?.exitCode, undefined);
  });
});

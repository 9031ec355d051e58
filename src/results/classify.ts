/**
 * Classification: one VM run in, one outcome out. Pure. The rule that matters most: nothing passes
 * without a positive status from the guest.
 */
import type { Expectation, Outcome, RawRun } from './model.ts';
import { mkosiError } from './mkosi-error.ts';
import { SUCCESS_STATUS } from '../guest/units.ts';
import { describeAccelFailure } from '../qemu/accel-failure.ts';
import { describeBoots, readStatusChannel, type StatusChannel, type StatusLine } from './status-channel.ts';

export { parseStatusLine, type StatusLine } from './status-channel.ts';

/** mkosi's exit code when QEMU was killed (background.md); an infrastructure failure. */
export const MKOSI_QEMU_KILLED = 247;

/** A status line as the reasons quote it. Pure. */
const lineDetail = (line: StatusLine) =>
  `SERVICE_RESULT=${line.serviceResult} EXIT_CODE=${line.exitCode ?? '?'} EXIT_STATUS=${line.exitStatus ?? '?'}`;

interface GuestStatus {
  status: number;
  detail: string;
}

/** How the manager's last stop reads in a reason: `the guest powered off with exit status 0`. Pure. */
function stopDetail(stop: NonNullable<StatusChannel['final']>, status: number): string {
  const how: Record<string, string> = { poweroff: 'powered off', halt: 'halted', exit: 'exited' };
  return `the guest ${how[stop.shutdown] ?? `shut down (${stop.shutdown})`} with exit status ${status}`;
}

/**
 * The guest's exit status, PID 1's own at the very end: its EXIT_STATUS= over the notify socket
 * (vsock-user, read by itest), else the exit status the manager report wrote at the last stop (every
 * transport; serial's verdict), else mkosi's exit code (vsock: mkosi exits with what PID 1 sent), else
 * the test unit's own line of the last boot (a guest whose report never ran). A unit line written while
 * the unit was stopped for a reboot or by PID 1's exit is context, never the verdict.
 */
function guestStatus(raw: RawRun, ch: StatusChannel): GuestStatus | undefined {
  const line = ch.unit;
  const unit = line?.serviceResult ? `; the unit: ${lineDetail(line)}` : '';
  if (raw.notify?.exitStatus !== undefined) {
    const status = raw.notify.exitStatus;
    // 123 is the unit's success only when the unit says so: PID 1 may exit with it for another reason.
    const succeeded = status === SUCCESS_STATUS && (!line || line.serviceResult === 'success');
    return { status, detail: succeeded ? 'unit succeeded' : `guest exit status ${status} over vsock${unit}` };
  }
  if (ch.final?.exitCode !== undefined) {
    const status = ch.final.exitCode;
    const succeeded = status === SUCCESS_STATUS && line?.serviceResult === 'success';
    return { status, detail: succeeded ? 'unit succeeded' : `${stopDetail(ch.final, status)}${unit}` };
  }
  // vsock: mkosi exits with the EXIT_STATUS PID 1 sent; 0 means nothing arrived, 247 means QEMU was killed.
  if (
    raw.transport === 'vsock' &&
    raw.exitCode !== null &&
    raw.exitCode !== 0 &&
    raw.exitCode !== MKOSI_QEMU_KILLED
  ) {
    return { status: raw.exitCode, detail: `guest exit status ${raw.exitCode} over vsock${unit}` };
  }
  if (line?.serviceResult) {
    if (line.serviceResult === 'success') return { status: SUCCESS_STATUS, detail: 'unit succeeded' };
    const detail = lineDetail(line);
    if (line.exitCode === 'exited' && line.exitStatus !== undefined && /^\d+$/.test(line.exitStatus)) {
      return { status: Number(line.exitStatus), detail };
    }
    // Killed or dumped by a signal, or a timeout/resource failure inside the guest: a failure with no number.
    return { status: 1, detail };
  }
  return undefined;
}

// Not the report's closing `---[ end Kernel panic - not syncing: ... ]---` line: the first says it.
const PANIC = /(?<!end )Kernel panic - not syncing:?(.*)/;

function lastMatch(lines: string[], re: RegExp): RegExpExecArray | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = re.exec(lines[i] ?? '');
    if (m) return m;
  }
  return undefined;
}

export function classify(raw: RawRun, exp: Expectation, timeoutSeconds: number): Outcome {
  // Say what was kept, not what should have been: a guest stopped early may not have forwarded a journal yet.
  const kept =
    (raw.journalEntries ?? 0) > 0 ? 'console and journal kept' : 'console kept; no journal had arrived';
  const err = (reason: string, infra: boolean): Outcome => ({
    status: 'error',
    reason,
    guestStatus: null,
    infra,
  });
  if (raw.launchError) return err(`could not start mkosi: ${raw.launchError}`, false);
  // vsock-user: the device or its listeners never came up, so no VM was started.
  if (raw.transportError && raw.exitCode === null && raw.signal === null && !raw.timedOut && !raw.cancelled)
    return err(raw.transportError, true);
  // Not the test's fault, whatever else the run shows: the guest never got a working vCPU.
  if (raw.accelFailure)
    return err(`KVM failed: ${describeAccelFailure(raw.accelFailure, raw.accelFailure.afterSeconds)}`, true);
  if (raw.accelAbandoned)
    return err('stopped: another VM showed KVM broken and the run switched to TCG', true);
  if (raw.cancelled)
    return err(
      raw.cancelReason ? `${raw.cancelReason} (${kept})` : `cancelled before the test finished (${kept})`,
      false,
    );
  if (raw.timedOut) {
    return {
      status: 'timeout',
      reason: `no result within ${timeoutSeconds} s; the VM was stopped (${kept})${raw.hangReport ? `; ${raw.hangReport}` : ''}`,
      guestStatus: null,
      infra: false,
    };
  }
  const ch = readStatusChannel(raw.statusLines ?? []);
  const boots = describeBoots(ch);
  const outcome = judge(raw, exp, ch);
  // How many boots it took, when more than one, goes with whatever the outcome.
  return boots ? { ...outcome, reason: `${outcome.reason} [${boots}]` } : outcome;
}

function judge(raw: RawRun, exp: Expectation, ch: StatusChannel): Outcome {
  const err = (reason: string, infra: boolean): Outcome => ({
    status: 'error',
    reason,
    guestStatus: null,
    infra,
  });
  // Emergency mode ends the VM with the emergency exit's failure: that is no test verdict.
  if (ch.emergency)
    return err('the guest fell into emergency mode before the test ran (see console log)', false);
  const guest = guestStatus(raw, ch);

  if (!guest) {
    const panic = lastMatch(raw.consoleTail, PANIC);
    if (panic)
      return err(
        `kernel panic: ${(panic[1] ?? '').trim() || 'see console log'}` +
          (raw.panicStopped
            ? ' (the console watch ended the VM: the guest kernel has no pvpanic driver)'
            : ''),
        false,
      );
    if (ch.endedRebooting)
      return err(
        `the VM ended while the guest was rebooting (${ch.endedRebooting.shutdown}), before the next boot reported`,
        true,
      );
    if (raw.exitCode === MKOSI_QEMU_KILLED) return err('QEMU was killed (mkosi exit 247)', true);
    if (raw.signal) return err(`mkosi was killed by ${raw.signal}`, true);
    if (raw.transportError) return err(`no status from the guest: ${raw.transportError}`, true);
    // The guest's manager reported its boot, so the channel worked; it went down without a shutdown
    // (`systemctl poweroff -ff`, as systemd's tests do when they fail, or a hard crash): the test's doing.
    if (raw.exitCode === 0 && ch.boots > 0 && !ch.final)
      return {
        status: 'fail',
        reason:
          'the guest powered off without shutting down (a forced poweroff or a crash: PID 1 gave no exit ' +
          "status); the test unit's last lines say why",
        guestStatus: null,
        infra: false,
      };
    if (raw.exitCode === 0)
      return err('the VM powered off without reporting a test status (no status from the guest)', true);
    // mkosi's own error rather than its last line (often a hint); one that would recur is not retried.
    const mkosi = mkosiError(raw.consoleTail);
    const tail =
      mkosi?.message ??
      raw.consoleTail
        .filter((l) => l.trim())
        .slice(-1)[0]
        ?.trim();
    return err(
      `mkosi failed with exit status ${raw.exitCode} and no test status${tail ? `: ${tail}` : ''}`,
      !mkosi?.deterministic,
    );
  }
  if (raw.journalEntries === 0 || raw.journalError) {
    return {
      status: 'error',
      reason: `${raw.journalError ? `journal unusable: ${raw.journalError}` : 'journal transport lost: the forwarded journal is empty'} (guest reported: ${guest.detail})`,
      guestStatus: guest.status,
      infra: true,
    };
  }
  const ok = guest.status === exp.exitStatus;
  const base = { guestStatus: guest.status, infra: false };
  if (guest.status === exp.skipStatus && !ok)
    return { ...base, status: 'skip', reason: `the test skipped itself (exit status ${guest.status})` };
  if (exp.shouldFail) {
    return ok
      ? { ...base, status: 'fail', reason: `expected to fail (should-fail) but it passed (${guest.detail})` }
      : { ...base, status: 'pass', reason: `failed as expected (${guest.detail})` };
  }
  if (ok)
    return {
      ...base,
      status: 'pass',
      reason:
        guest.detail === 'unit succeeded' ? 'unit succeeded' : `exit status ${guest.status} as expected`,
    };
  return {
    ...base,
    status: 'fail',
    reason: `exit status ${guest.status}, expected ${exp.exitStatus} (${guest.detail})`,
  };
}

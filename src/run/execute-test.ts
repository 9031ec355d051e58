/** Runs one test to its final result: attempts, retries for infrastructure errors and flaky failures. */
import { readStatusChannel } from '../results/status-channel.ts';
import type { TestSpec } from '../config/test-spec.ts';
import type { Attempt, RawRun, TestResult } from '../results/model.ts';
import type { Accelerator } from './accelerator.ts';
import { describeAccelFailure, type AccelFailure } from '../qemu/accel-failure.ts';
import type { AccelFallback } from '../host/decide.ts';
import { classify } from '../results/classify.ts';
import { applyCoredumpPolicy } from '../results/policy.ts';
import { skipWhenQemuKilled } from '../results/qemu-killed.ts';
import { applySanitizerPolicy } from '../results/sanitizer-policy.ts';
import type { VmConfig } from '../mkosi/vm-argv.ts';
import { archiveAttempt, attemptFiles, runAttempt, type AttemptEnv } from './vm-attempt.ts';
import { DigestBuilder } from '../digest/builder.ts';
import type { JournalDigest } from '../digest/model.ts';
import { machineName } from '../util/sanitize.ts';
import { seconds } from '../util/size.ts';
import { resultFromAttempts } from '../results/test-result.ts';

export interface TestContext {
  base: Omit<VmConfig, 'statusFile' | 'journalTarget' | 'machine' | 'cpus' | 'accel'>;
  /** --shell: keep the VM up on this terminal after the test; no timeout, no retries. */
  shell?: boolean;
  /** The run's accelerator, timeout scale and vCPUs, which switch to TCG if KVM turns out broken. */
  accelerator: Accelerator;
  runId: string;
  attemptEnv: AttemptEnv;
  rerun: (spec: TestSpec) => string;
  /**
   * performance.now() by which every VM must have ended (`itest test --deadline`, so that meson's own
   * timeout never kills the run before its logs are saved): an attempt's timeout is cut to what is left.
   */
  vmDeadline?: number;
  onAttemptStart?: (spec: TestSpec, attempt: number, argv: string[]) => void;
  onAttemptEnd?: (spec: TestSpec, attempt: Attempt, willRetry: boolean) => void;
}

/** Whether another attempt is due after this outcome, given what was already retried. */
export function shouldRetry(
  a: Pick<Attempt, 'status' | 'infra'>,
  used: { infra: number; flaky: number },
  spec: TestSpec,
): 'infra' | 'flaky' | undefined {
  if (a.status === 'error' && a.infra && used.infra < spec.infraRetries) return 'infra';
  if ((a.status === 'fail' || a.status === 'timeout') && used.flaky < spec.retries) return 'flaky';
  return undefined;
}

function accelFallbackOf(spec: TestSpec, f: AccelFailure, afterSeconds: number | undefined): AccelFallback {
  return {
    detectedBy: 'vm',
    reason: describeAccelFailure(f, afterSeconds),
    qemuLine: f.line,
    test: spec.name,
  };
}

/**
 * After an attempt under KVM that showed KVM broken (or was stopped because another VM did): tell the
 * run, and rerun under TCG unless KVM was required. Undefined for every other attempt.
 */
function accelRerun(raw: RawRun, spec: TestSpec, acc: Accelerator): 'rerun' | 'stop' | undefined {
  if (raw.accel !== 'kvm') return undefined;
  if (raw.accelFailure)
    return acc.broken(accelFallbackOf(spec, raw.accelFailure, raw.accelFailure.afterSeconds));
  if (raw.accelAbandoned) return acc.fatal ? 'stop' : 'rerun';
  return undefined;
}

/** An attempt that the host failed before it had a result: an error that names the cause, never retried. */
async function hostFailure(
  spec: TestSpec,
  ctx: TestContext,
  e: unknown,
  a: { n: number; machine: string; accel: 'kvm' | 'tcg'; startedAt: string; t0: number },
): Promise<{ hostError: Attempt; digest: JournalDigest }> {
  const why = `could not run on this host: ${e instanceof Error ? e.message : String(e)}`;
  const digest = new DigestBuilder(spec.unit).finish();
  digest.notes.push(`no logs were collected: ${why}`);
  return {
    hostError: {
      status: 'error',
      reason: why,
      guestStatus: null,
      infra: false,
      attempt: a.n,
      accel: a.accel,
      machine: a.machine,
      mkosiExit: null,
      startedAt: a.startedAt,
      durations: { vmSeconds: seconds(performance.now() - a.t0), collectSeconds: 0 },
      files: await attemptFiles(ctx.attemptEnv.layout.test(spec.name)),
    },
    digest,
  };
}

/** A test between attempts: what it did so far. The pool holds it while it waits for a slot. */
export interface TestRun {
  spec: TestSpec;
  attempts: Attempt[];
  used: { infra: number; flaky: number };
  digest?: TestResult['digest'];
  files?: TestResult['files'];
}

export const freshRun = (spec: TestSpec): TestRun => ({ spec, attempts: [], used: { infra: 0, flaky: 0 } });

/**
 * Runs attempts of one test until it has a result, or until its VM was stopped because KVM broke: then it
 * hands the test back (`again`) so that its TCG attempt waits for a slot of the smaller TCG pool.
 */
export async function executeTestStep(
  run: TestRun,
  ctx: TestContext,
  queuedMs: number,
): Promise<{ done: TestResult } | { again: TestRun }> {
  const { spec, attempts, used } = run;
  // Cancelled while it waited for its TCG rerun: its result is what it did so far.
  const cancelled = ctx.attemptEnv.signal.aborted && attempts.length > 0;
  for (let n = attempts.length + 1; !cancelled; n++) {
    if (n > 1) {
      const moved = await archiveAttempt(ctx.attemptEnv.layout, spec.name, n - 1);
      const prev = attempts[n - 2];
      if (prev) prev.files = moved;
    }
    const machine = machineName(spec.name, ctx.runId, n);
    // Read per attempt: a rerun after KVM failed gets TCG, its vCPUs and its timeout scale.
    const accel = ctx.accelerator.now;
    const fullSeconds = Math.round(spec.timeout * accel.timeoutScale);
    const leftSeconds =
      ctx.vmDeadline === undefined ? Infinity : Math.floor((ctx.vmDeadline - performance.now()) / 1000);
    const timeoutSeconds = Math.max(1, Math.min(fullSeconds, leftSeconds));
    let vmStarted = false;
    const t0 = performance.now();
    const startedAt = new Date().toISOString();
    const attemptRun = await runAttempt(
      spec,
      {
        ...ctx.base,
        machine,
        accel: accel.accel,
        cpus: spec.cpus ?? accel.defaultCpus,
        ...(spec.firmware ? { firmware: spec.firmware } : {}),
        ...(ctx.shell ? { shell: true } : {}),
      },
      timeoutSeconds * 1000,
      {
        ...ctx.attemptEnv,
        interactive: ctx.shell === true,
        accelSwitched: ctx.accelerator.switchedSignal,
        // Switch the run the moment this VM shows it, not after its logs are collected.
        onAccelBroken: (f, after) => void ctx.accelerator.broken(accelFallbackOf(spec, f, after)),
        onStart: (argv) => {
          vmStarted = true;
          ctx.onAttemptStart?.(spec, n, argv);
        },
      },
    ).catch(async (e: unknown) => {
      // The host failed this attempt (a directory where its console log goes, a full disk, no file
      // descriptors left): that is this test's error, and the other tests go on.
      const failed = await hostFailure(spec, ctx, e, { n, machine, accel: accel.accel, startedAt, t0 });
      if (!vmStarted) ctx.onAttemptStart?.(spec, n, []);
      return failed;
    });
    if ('hostError' in attemptRun) {
      attempts.push(attemptRun.hostError);
      run.digest = attemptRun.digest;
      run.files = attemptRun.hostError.files;
      ctx.onAttemptEnd?.(spec, attemptRun.hostError, false);
      break;
    }
    const outcome = skipWhenQemuKilled(
      applySanitizerPolicy(
        applyCoredumpPolicy(classify(attemptRun.raw, spec, timeoutSeconds), attemptRun.digest, spec),
        attemptRun.digest,
        spec,
      ),
      attemptRun.raw.exitCode,
      spec,
      used.infra < spec.infraRetries,
    );
    const aborted = ctx.attemptEnv.signal.aborted;
    const accelVerdict = accelRerun(attemptRun.raw, spec, ctx.accelerator);
    const rerunUnderTcg = accelVerdict === 'rerun' && !aborted && !ctx.shell;
    if (rerunUnderTcg) outcome.reason += '; rerunning under TCG';
    if (outcome.status === 'timeout' && timeoutSeconds < fullSeconds)
      outcome.reason += ` (cut short by the deadline; the test's timeout is ${fullSeconds} s)`;
    const attempt: Attempt = {
      ...outcome,
      attempt: n,
      accel: accel.accel,
      machine,
      mkosiExit: attemptRun.raw.exitCode,
      startedAt: attemptRun.startedAt,
      durations: { vmSeconds: seconds(attemptRun.vmMs), collectSeconds: seconds(attemptRun.collectMs) },
      files: attemptRun.files,
    };
    const channel = readStatusChannel(attemptRun.raw.statusLines ?? []);
    if (channel.unitLine) attempt.statusLine = channel.unitLine;
    if (channel.boots > 0) {
      attempt.boots = channel.boots;
      attempt.softReboots = channel.softReboots;
    }
    if (attemptRun.raw.notify?.exitStatus !== undefined)
      attempt.notifyExitStatus = attemptRun.raw.notify.exitStatus;
    attempts.push(attempt);
    run.digest = attemptRun.digest;
    run.files = attemptRun.files;
    // A KVM failure is the host's, not the test's: the rerun under TCG uses none of its retries.
    const retry =
      rerunUnderTcg || aborted || ctx.shell || accelVerdict === 'stop'
        ? undefined
        : shouldRetry(attempt, used, spec);
    ctx.onAttemptEnd?.(spec, attempt, rerunUnderTcg || retry !== undefined);
    if (rerunUnderTcg) return { again: run };
    if (!retry) break;
    used[retry]++;
  }
  return {
    done: resultFromAttempts(spec, attempts, {
      digest: run.digest!,
      files: run.files ?? {},
      queuedMs,
      rerun: ctx.rerun(spec),
    }),
  };
}

/** One test to its result, reruns under TCG included (for callers without a pool). */
export async function executeTest(spec: TestSpec, ctx: TestContext, queuedMs: number): Promise<TestResult> {
  let run = freshRun(spec);
  for (;;) {
    const step = await executeTestStep(run, ctx, queuedMs);
    if ('done' in step) return step.done;
    run = step.again;
  }
}

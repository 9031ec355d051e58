/** Runs one test to its final result: attempts, retries for infrastructure errors and flaky failures. */
import type { TestSpec } from '../config/test-spec.ts';
import type { Attempt, RawRun, TestResult } from '../results/model.ts';
import type { Accelerator } from './accelerator.ts';
import { describeAccelFailure } from '../qemu/accel-failure.ts';
import { classify } from '../results/classify.ts';
import { applyCoredumpPolicy } from '../results/policy.ts';
import type { VmConfig } from '../mkosi/vm-argv.ts';
import { archiveAttempt, runAttempt, type AttemptEnv } from './vm-attempt.ts';
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

/**
 * After an attempt under KVM that showed KVM broken (or was stopped because another VM did): tell the
 * run, and rerun under TCG unless KVM was required. Undefined for every other attempt.
 */
function accelRerun(raw: RawRun, spec: TestSpec, acc: Accelerator): 'rerun' | 'stop' | undefined {
  if (raw.accel !== 'kvm') return undefined;
  if (raw.accelFailure) {
    return acc.broken({
      detectedBy: 'vm',
      reason: describeAccelFailure(raw.accelFailure, raw.accelFailure.afterSeconds),
      qemuLine: raw.accelFailure.line,
      test: spec.name,
    });
  }
  if (raw.accelAbandoned) return acc.fatal ? 'stop' : 'rerun';
  return undefined;
}

export async function executeTest(spec: TestSpec, ctx: TestContext, queuedMs: number): Promise<TestResult> {
  const attempts: Attempt[] = [];
  const used = { infra: 0, flaky: 0 };
  let digest: TestResult['digest'];
  let files: TestResult['files'];
  for (let n = 1; ; n++) {
    if (n > 1) {
      const moved = await archiveAttempt(ctx.attemptEnv.layout, spec.name, n - 1);
      const prev = attempts[n - 2];
      if (prev) prev.files = moved;
    }
    const machine = machineName(spec.name, ctx.runId, n);
    // Read per attempt: a rerun after KVM failed gets TCG, its vCPUs and its timeout scale.
    const accel = ctx.accelerator.now;
    const timeoutSeconds = Math.round(spec.timeout * accel.timeoutScale);
    const run = await runAttempt(
      spec,
      {
        ...ctx.base,
        machine,
        accel: accel.accel,
        cpus: spec.cpus ?? accel.defaultCpus,
        ...(ctx.shell ? { shell: true } : {}),
      },
      timeoutSeconds * 1000,
      {
        ...ctx.attemptEnv,
        interactive: ctx.shell === true,
        accelSwitched: ctx.accelerator.switchedSignal,
        onStart: (argv) => ctx.onAttemptStart?.(spec, n, argv),
      },
    );
    const outcome = applyCoredumpPolicy(classify(run.raw, spec, timeoutSeconds), run.digest, spec);
    const accelVerdict = accelRerun(run.raw, spec, ctx.accelerator);
    if (accelVerdict) outcome.reason += accelVerdict === 'rerun' ? '; rerunning under TCG' : '';
    const attempt: Attempt = {
      ...outcome,
      attempt: n,
      accel: accel.accel,
      machine,
      mkosiExit: run.raw.exitCode,
      startedAt: run.startedAt,
      durations: { vmSeconds: seconds(run.vmMs), collectSeconds: seconds(run.collectMs) },
      files: run.files,
    };
    if (run.raw.statusLine) attempt.statusLine = run.raw.statusLine;
    attempts.push(attempt);
    digest = run.digest;
    files = run.files;
    // A KVM failure is the host's, not the test's: the rerun under TCG uses none of its retries.
    const retry =
      accelVerdict === 'rerun'
        ? 'accel'
        : ctx.attemptEnv.signal.aborted || ctx.shell || accelVerdict === 'stop'
          ? undefined
          : shouldRetry(attempt, used, spec);
    ctx.onAttemptEnd?.(spec, attempt, retry !== undefined);
    if (!retry) break;
    if (retry !== 'accel') used[retry]++;
  }
  return resultFromAttempts(spec, attempts, {
    digest: digest!,
    files: files ?? {},
    queuedMs,
    rerun: ctx.rerun(spec),
  });
}

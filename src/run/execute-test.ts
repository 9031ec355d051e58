/** Runs one test to its final result: attempts, retries for infrastructure errors and flaky failures. */
import type { TestSpec } from '../config/test-spec.ts';
import type { Attempt, TestResult } from '../results/model.ts';
import { classify } from '../results/classify.ts';
import { applyCoredumpPolicy } from '../results/policy.ts';
import type { VmPlan } from '../mkosi/vm-argv.ts';
import { archiveAttempt, runAttempt, type AttemptEnv } from './vm-attempt.ts';
import { machineName } from '../util/sanitize.ts';
import { seconds } from '../util/size.ts';

export interface TestContext {
  base: Omit<VmPlan, 'statusFile' | 'journalTarget' | 'machine' | 'cpus'>;
  /** --shell: keep the VM up on this terminal after the test; no timeout, no retries. */
  shell?: boolean;
  defaultCpus: number;
  timeoutScale: number;
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

export async function executeTest(spec: TestSpec, ctx: TestContext, queuedMs: number): Promise<TestResult> {
  const timeoutSeconds = Math.round(spec.timeout * ctx.timeoutScale);
  const attempts: Attempt[] = [];
  const used = { infra: 0, flaky: 0 };
  let digest: TestResult['digest'];
  let files: TestResult['files'];
  for (let n = 1; ; n++) {
    if (n > 1) {
      const moved = await archiveAttempt(ctx.attemptEnv.outputDir, spec.name, n - 1);
      const prev = attempts[n - 2];
      if (prev) prev.files = moved;
    }
    const machine = machineName(spec.name, ctx.runId, n);
    const run = await runAttempt(
      spec,
      { ...ctx.base, machine, cpus: spec.cpus ?? ctx.defaultCpus, ...(ctx.shell ? { shell: true } : {}) },
      timeoutSeconds * 1000,
      {
        ...ctx.attemptEnv,
        interactive: ctx.shell === true,
        onStart: (argv) => ctx.onAttemptStart?.(spec, n, argv),
      },
    );
    const outcome = applyCoredumpPolicy(classify(run.raw, spec, timeoutSeconds), run.digest, spec);
    const attempt: Attempt = {
      ...outcome,
      attempt: n,
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
    const retry = ctx.attemptEnv.signal.aborted || ctx.shell ? undefined : shouldRetry(attempt, used, spec);
    ctx.onAttemptEnd?.(spec, attempt, retry !== undefined);
    if (!retry) break;
    used[retry]++;
  }
  const last = attempts[attempts.length - 1]!;
  const vm = attempts.reduce((s, a) => s + a.durations.vmSeconds, 0);
  const collect = attempts.reduce((s, a) => s + a.durations.collectSeconds, 0);
  return {
    name: spec.name,
    unit: spec.unit,
    status: last.status,
    reason:
      attempts.length > 1 ? `${last.reason} (attempt ${attempts.length} of ${attempts.length})` : last.reason,
    exitStatus: last.guestStatus,
    expected: { exitStatus: spec.exitStatus, skipStatus: spec.skipStatus, shouldFail: spec.shouldFail },
    tags: spec.tags,
    flaky: last.status === 'pass' && attempts.some((a) => a.status === 'fail' || a.status === 'timeout'),
    attempts,
    timings: {
      queuedSeconds: seconds(queuedMs),
      vmSeconds: Math.round(vm * 10) / 10,
      collectSeconds: Math.round(collect * 10) / 10,
      totalSeconds: Math.round((vm + collect) * 10) / 10,
    },
    files,
    outputTail: digest.unitOutput,
    digest,
    rerun: ctx.rerun(spec),
  };
}

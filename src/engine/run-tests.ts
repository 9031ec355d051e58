/**
 * The VM phase of a run: one VM per selected test through the pool, longest first, sized by what the
 * accelerator allows at each start (TCG burns a core per vCPU, so the pool may shrink after a switch).
 */
import { randomBytes } from 'node:crypto';
import { join, relative } from 'node:path';
import type { RunConfig } from '../config/run-config.ts';
import type { TestSpec } from '../config/test-spec.ts';
import type { Manifest } from '../config/manifest.ts';
import { computeSlots } from '../host/decide.ts';
import { hostArch } from '../host/probe.ts';
import { spell } from '../config/settings.ts';
import type { TestResult } from '../results/model.ts';
import { resultNotRun } from '../results/test-result.ts';
import type { Accelerator } from '../run/accelerator.ts';
import { executeTestStep, freshRun, type TestContext } from '../run/execute-test.ts';
import type { OutputLayout } from '../run/output-layout.ts';
import { requeue, runPool } from '../run/pool.ts';
import { makeSshKey, sshKeyDir } from '../run/ssh-access.ts';
import type { VmGate } from '../run/host-slots.ts';
import { expectedSeconds } from '../shard/durations.ts';
import type { Prepared } from './prepare-image.ts';
import type { Ui } from './ui.ts';

export function rerunCommand(cfg: RunConfig, spec: TestSpec): string {
  const rel = (p: string) => relative(process.cwd(), p) || '.';
  const parts = [cfg.invokedAs, 'run', '--config', rel(cfg.configDir)];
  if (cfg.mesonBuildDir) {
    parts.push('--meson-build-dir', rel(cfg.mesonBuildDir));
    if (cfg.mesonSuite) parts.push('--meson-suite', cfg.mesonSuite);
  } else if (cfg.manifestPath !== join(cfg.configDir, 'itest.yaml'))
    parts.push('--manifest', rel(cfg.manifestPath));
  parts.push('--test', spec.name, '--keep', 'all');
  return parts.join(' ');
}

export interface TestsRun {
  tests: TestResult[];
  /** The most VMs the pool allowed at once during the run. */
  jobs: number;
}

export async function runTests(o: {
  cfg: RunConfig;
  ui: Ui;
  selected: TestSpec[];
  manifest: Manifest;
  prepared: Prepared;
  accelerator: Accelerator;
  layout: OutputLayout;
  signal: AbortSignal;
  /** A VM budget shared with other itest processes: each VM waits for a slot of it. */
  gate?: VmGate;
  /** performance.now() by which every VM must have ended (TestContext.vmDeadline). */
  vmDeadline?: number;
}): Promise<TestsRun> {
  const { cfg, ui, selected, prepared, accelerator, signal } = o;
  const { host, hostSetup, image } = prepared;
  const maxRam = Math.max(...selected.map((t) => t.ram));
  const slotsNow = () => {
    const now = accelerator.now;
    return computeSlots({
      cpus: host.cpus,
      memAvailable: host.memAvailable,
      vmRam: maxRam,
      vmCpus: Math.max(...selected.map((t) => t.cpus ?? now.defaultCpus)),
      accel: now.accel,
      jobs: cfg.jobs,
    });
  };
  const pool = slotsNow();
  if (cfg.jobs !== undefined && cfg.jobs > pool.byMemory)
    ui.warn(
      `${spell(cfg.door, 'jobs', String(cfg.jobs))} exceeds what memory allows (${pool.byMemory} VMs of ${Math.round(maxRam / 1024 ** 2)} MiB)`,
    );
  ui.info(
    `running ${selected.length} test(s), ${pool.slots} at once (CPU allows ${pool.byCpu}, memory ${pool.byMemory})`,
  );
  // ssh over vsock (`itest ssh TEST`): one throw-away key for the run's VMs, kept in its work directory.
  const ssh =
    hostSetup.transport === 'serial' ? undefined : await makeSshKey(await sshKeyDir(o.layout.workRoot));
  if (ssh && 'error' in ssh) ui.warn(ssh.error);
  const sshKey = ssh && !('error' in ssh) ? ssh : undefined;
  const ctx: TestContext = {
    base: {
      mkosi: cfg.mkosi,
      dialect: hostSetup.dialect,
      configDir: cfg.configDir,
      imageDir: image.dir,
      transport: hostSetup.transport,
      arch: hostArch(),
      ...(o.manifest.firmware ? { firmware: o.manifest.firmware } : {}),
      ...(sshKey ? { sshPublicKey: sshKey.public } : {}),
    },
    ...(cfg.shell ? { shell: true } : {}),
    accelerator,
    runId: randomBytes(3).toString('hex'),
    attemptEnv: {
      layout: o.layout,
      journalRemote: host.journalRemote!,
      journalctl: host.journalctl!,
      ...(host.vhostDeviceVsock ? { vhostDevice: host.vhostDeviceVsock.path } : {}),
      ...(sshKey ? { sshKey: sshKey.private } : {}),
      env: cfg.env,
      signal,
    },
    rerun: (spec) => rerunCommand(cfg, spec),
    ...(o.vmDeadline !== undefined ? { vmDeadline: o.vmDeadline } : {}),
    onAttemptStart: (spec, n, argv) => ui.testStart(spec, n, argv),
    onAttemptEnd: (spec, a, retry) => ui.testEnd(spec, a, retry),
  };
  if (cfg.shell) ui.info(shellHelp(cfg, selected[0]!, image.dir, hostSetup.transport));
  // Longest first by known durations (else timeouts), so the run does not end on one long test alone.
  const expected = expectedSeconds(selected, cfg.durations);
  const poolStart = performance.now();
  let jobs = pool.slots;
  const tests = await runPool(
    selected.map(freshRun),
    () => slotsNow().slots,
    (run) => expected.get(run.spec.name)!,
    async (run) => {
      const { spec } = run;
      // Left out on purpose (systemd's --skip, TEST_SKIP, ...): a skip with the reason, no VM.
      if (spec.skip)
        return { ...resultNotRun(spec, spec.skip, rerunCommand(cfg, spec)), status: 'skip' as const };
      if (signal.aborted && run.attempts.length === 0) {
        const why = typeof signal.reason === 'string' ? signal.reason : 'cancelled';
        return resultNotRun(spec, `${why} before it started`, rerunCommand(cfg, spec));
      }
      jobs = Math.max(jobs, slotsNow().slots);
      const release = o.gate ? await o.gate(slotsNow().slots, signal).catch(() => undefined) : async () => {};
      if (!release) {
        const why = typeof signal.reason === 'string' ? signal.reason : 'cancelled';
        return resultNotRun(
          spec,
          `${why} while it waited for a VM slot of this host`,
          rerunCommand(cfg, spec),
        );
      }
      try {
        // A test whose KVM attempt was stopped comes back to wait for a slot of the TCG pool.
        const step = await executeTestStep(run, ctx, performance.now() - poolStart);
        return 'done' in step ? step.done : requeue(step.again);
      } finally {
        await release();
      }
    },
    // The attempt loop turns host errors into the test's result already: this is the net for the rest.
    (err, run) =>
      resultNotRun(
        run.spec,
        `could not run: ${err instanceof Error ? err.message : String(err)}`,
        rerunCommand(cfg, run.spec),
      ),
  );
  return { tests, jobs };
}

function shellHelp(cfg: RunConfig, spec: TestSpec, imageDir: string, transport: string): string {
  const mkosi = [...cfg.mkosi, '--directory', cfg.configDir, '--output-dir', imageDir].join(' ');
  return [
    `--shell: ${spec.name} runs in a VM that stays up afterwards; this terminal is its console.`,
    `  log in as root (automatic when the image sets Autologin=yes), then e.g. \`systemctl status ${spec.unit}\`, \`journalctl -b -u ${spec.unit}\``,
    '  end the run with `systemctl poweroff` in the guest (or Ctrl-a x to stop QEMU); results are collected as usual',
    transport === 'serial'
      ? '  (no vsock here, so no ssh: use this console)'
      : `  from another terminal, over vsock (the image needs sshd): \`itest ssh ${spec.name} --output ${cfg.outputDir}\`${
          transport === 'vsock' ? `, or mkosi's own \`${mkosi} --machine=<its machine name> ssh\`` : ''
        }`,
  ].join('\n');
}

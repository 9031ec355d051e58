/**
 * The engine: tests -> host -> image -> accelerator -> VMs -> results. Front doors (CLI, action) build a
 * RunConfig and a Ui; everything here is the same for both.
 */
import { mkdir, rm } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import type { RunConfig } from '../config/run-config.ts';
import { summarize, RESULTS_VERSION, type Environment, type TestResult } from '../results/model.ts';
import { mergeRepeats } from '../results/repeats.ts';
import type { Accelerator } from '../run/accelerator.ts';
import { hostSlots } from '../run/host-slots.ts';
import { OutputLayout } from '../run/output-layout.ts';
import { UserError } from '../util/errors.ts';
import { spell } from '../config/settings.ts';
import { seconds } from '../util/size.ts';
import { TOOL_VERSION } from '../version.ts';
import { dropPassingLogs } from './keep-logs.ts';
import { loadTests } from './load-tests.ts';
import { prepareImage, type EngineDeps, type Prepared } from './prepare-image.ts';
import { runTests } from './run-tests.ts';
import { settleAccelerator } from './settle-accelerator.ts';
import type { RunOutput, Ui } from './ui.ts';
import { writeResults } from './write-results.ts';

export async function runEngine(
  cfg: RunConfig,
  ui: Ui,
  signal: AbortSignal,
  deps: EngineDeps = {},
): Promise<RunOutput> {
  const startedAt = new Date();
  const t0 = performance.now();
  // Everything that can be wrong with the input fails here, before the host is even probed.
  const { manifest, selected } = await loadTests(cfg);
  const repeat = cfg.repeat ?? 1;
  // Every VM the run plans: the selection once per repeat.
  ui.planned(Array.from({ length: repeat }, () => selected).flat());
  if (cfg.shell && selected.length !== 1) {
    throw new UserError(
      `${spell(cfg.door, 'shell')} keeps one VM up on this terminal: select exactly one test with ${spell(cfg.door, 'tests')} (selected: ${selected.map((t) => t.name).join(', ')})`,
    );
  }
  if (cfg.shell && repeat > 1)
    throw new UserError(
      `${spell(cfg.door, 'shell')} keeps one VM up for you to debug, ${spell(cfg.door, 'repeat', String(repeat))} runs it over and over: leave one of them out`,
    );
  const prepared = await prepareImage(cfg, ui, deps, signal);
  const accelerator = await settleAccelerator(cfg, ui, prepared.host, prepared.hostSetup, prepared.image.dir);
  const layout = new OutputLayout(cfg.outputDir);
  // A work root of our own: rm takes away a symlink planted at its name instead of following it, so each
  // attempt's rm -rf of its work directory stays inside the output directory.
  await rm(layout.workRoot, { recursive: true, force: true });
  await mkdir(layout.workRoot, { recursive: true });
  // The engine stops the run itself when KVM was required and turned out broken.
  const runSignal = AbortSignal.any([signal, accelerator.stopSignal]);
  // A budget shared with other itest processes on this host (--vm-slots; itest test always has one).
  const vmGate = cfg.vmSlots
    ? hostSlots(cfg.vmSlots, {
        onWait: (n) =>
          ui.info(
            `waiting for one of the host's ${n} VM slot(s) in ${cfg.vmSlots} (other itest processes hold them)`,
          ),
      })
    : undefined;
  const rounds: TestResult[][] = [];
  let jobs = 0;
  for (let k = 1; k <= repeat; k++) {
    if (repeat > 1) ui.info(`repeat ${k} of ${repeat}`);
    // Each run's logs in a directory of its own (repeat-<k>/), so that a later run cannot overwrite the
    // logs of the one that failed; made fresh like the work root, never through a planted link.
    const roundLayout = repeat > 1 ? new OutputLayout(join(cfg.outputDir, `repeat-${k}`)) : layout;
    if (repeat > 1) {
      await rm(roundLayout.dir, { recursive: true, force: true });
      await mkdir(roundLayout.workRoot, { recursive: true });
    }
    const round = await runTests({
      cfg,
      ui,
      selected,
      manifest,
      prepared,
      accelerator,
      layout: roundLayout,
      signal: runSignal,
      ...(vmGate ? { gate: vmGate } : {}),
      ...(deps.vmDeadline !== undefined ? { vmDeadline: deps.vmDeadline } : {}),
    });
    if (cfg.keep === 'failed') await dropPassingLogs(round.tests);
    if (repeat > 1) await rm(roundLayout.workRoot, { recursive: true, force: true });
    rounds.push(round.tests);
    jobs = Math.max(jobs, round.jobs);
    // A cancel (or KVM broken when required) ends the repeats too: the runs so far are the result.
    if (runSignal.aborted) break;
  }
  const tests = mergeRepeats(rounds);
  await rm(layout.workRoot, { recursive: true, force: true });
  const out = await writeResults(layout, {
    version: RESULTS_VERSION,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: seconds(performance.now() - t0),
    config: { dir: cfg.configDir, manifest: cfg.manifestPath },
    environment: environment(cfg, prepared, accelerator, tests, jobs),
    summary: summarize(tests),
    tests,
    ...(cfg.shard ? { shard: cfg.shard } : {}),
  });
  // KVM was required and broken: the partial results are on disk; the front door reports them, then exits 3.
  return accelerator.fatal ? { ...out, fatal: accelerator.fatal } : out;
}

/** Where and how the run ran, as results.json records it. Pure. */
function environment(
  cfg: RunConfig,
  { host, hostSetup, image, mkosiVersion }: Prepared,
  accelerator: Accelerator,
  tests: TestResult[],
  jobs: number,
): Environment {
  const final = accelerator.plan;
  return {
    tool: { name: 'itest-action', version: TOOL_VERSION },
    host: { arch: host.arch, cpus: host.cpus, memTotal: host.memTotal, kernel: release() },
    mkosi: { version: mkosiVersion, dialect: hostSetup.dialect.name, command: cfg.mkosi },
    qemu: { version: host.qemu.version ?? 'unknown' },
    accel: final.accel,
    accelDetail: final.accelDetail,
    ...(accelerator.fallback
      ? {
          accelFallback: {
            ...accelerator.fallback,
            // Those whose KVM attempt was stopped and followed by a TCG one, not every test that ran under KVM.
            rerun: tests
              .filter((t) =>
                t.attempts.some((a, i) => a.accel === 'kvm' && t.attempts[i + 1]?.accel === 'tcg'),
              )
              .map((t) => t.name),
          },
        }
      : {}),
    transport: hostSetup.transport,
    transportDetail: hostSetup.transportDetail,
    jobs,
    timeoutScale: final.timeoutScale,
    image,
  };
}

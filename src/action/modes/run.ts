/**
 * The run mode: this job's tests (all, or one shard of a prepared run) on this runner, the image from the
 * Actions cache, then the results to GitHub; a shard also hands its results to the report job.
 */
import * as core from '@actions/core';
import type { Mode } from './mode.ts';
import type { ActionConfig } from '../inputs.ts';
import type { GitHubContext } from '../github/context.ts';
import { jobImageCache } from '../github/actions-cache.ts';
import { jobBaseStore } from '../github/base-cache.ts';
import { artifactName } from '../github/artifact-name.ts';
import { info } from '../github/log.ts';
import { publishResults } from '../github/publish.ts';
import { uploadLogs } from '../github/upload.ts';
import { readyRunner } from '../runner/ready.ts';
import { runEngine } from '../../engine/run.ts';
import type { RunOutput, Ui } from '../../engine/ui.ts';
import { writeResults } from '../../engine/write-results.ts';
import { OutputLayout } from '../../run/output-layout.ts';
import { stopOnSignals } from '../../run/stop-on-signals.ts';
import { loadDurations } from '../../shard/durations.ts';
import { renderEnvironment, renderReport } from '../../results/terminal.ts';

export const runMode: Mode = async ({ cfg, gh, ui, warnings, label }) => {
  cfg.run.mkosi = await readyRunner(cfg, (l) => core.info(l), { vms: true, warn: (w) => ui.warn(w) });
  if (cfg.durationsPath && !cfg.run.durations) {
    const d = await loadDurations(cfg.durationsPath);
    core.info(d.note);
    if (d.durations) cfg.run.durations = d.durations;
  }
  const imageCache = jobImageCache(gh, cfg.run.outputDir, (w) => ui.warn(w));
  // A cancelled job gets SIGINT, then SIGTERM: each only stops the run, which ends its VMs and reports.
  const stop = stopOnSignals((sig, first) =>
    core.info(
      first ? `${sig}: stopping the VMs; the results so far follow` : `${sig}: still stopping the VMs`,
    ),
  );
  const out = await runEngine(cfg.run, ui, stop, {
    imageCache,
    ...jobBaseStore(gh, cfg.run, (w) => ui.warn(w)),
  });
  info(renderEnvironment(out.results));
  info(renderReport(out.results));
  await publishResults(out.results, cfg, gh, warnings, label);
  // results.json now names the log artifact of each test; a shard hands it to the report job.
  const written = await writeResults(new OutputLayout(cfg.run.outputDir), out.results);
  if (cfg.run.shard) await uploadShardResults(written, cfg, gh, label!, ui);
  // KVM was required and broke mid-run: everything is reported, and the step fails as a host problem.
  if (out.fatal) throw out.fatal;
  return written.results;
};

/** A shard's results.json and JUnit go to an artifact of their own, which the report job merges. */
async function uploadShardResults(
  out: RunOutput,
  cfg: ActionConfig,
  gh: GitHubContext,
  label: string,
  ui: Ui,
): Promise<void> {
  const name = artifactName({
    prefix: cfg.resultsArtifactPrefix,
    job: label,
    runAttempt: gh.runAttempt,
    arch: out.results.environment.host.arch,
  });
  const up = await uploadLogs({
    name,
    files: [out.resultsPath, out.junitPath],
    rootDir: cfg.run.outputDir,
    retentionDays: cfg.retentionDays,
  });
  if (up.error)
    core.setFailed(
      `uploading this shard's results as ${name} failed (${up.error}): the report job will count shard ${cfg.run.shard!.index} as missing`,
    );
  else ui.info(`shard results uploaded as artifact ${name}`);
}

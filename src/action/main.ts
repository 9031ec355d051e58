/**
 * The action's main step, one implementation for every mode (as actions/cache runs restore and
 * restore-only): inputs and the GitHub context, the hand-off to the post step, the mode the `mode` input
 * names, then the check run and the verdict. The modes come in as a table, so a test can inject its own.
 */
import * as core from '@actions/core';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInputs, type ActionConfig } from './inputs.ts';
import { setDone, setLabel, setOutputDir, setStartedFile } from './state.ts';
import { readContext, type GitHubContext } from './github/context.ts';
import { checkHeadSha, publishCheckRun } from './github/checks.ts';
import { imageDir } from './github/actions-cache.ts';
import { verdict } from './github/annotations.ts';
import { info } from './github/log.ts';
import { buildGroupUi } from './github/build-group.ts';
import { reportBuildFailure } from './github/build-failure.ts';
import { recordingUi, StartedRecord } from './runner/started.ts';
import type { Mode } from './modes/mode.ts';
import { runMode } from './modes/run.ts';
import { prepareMode } from './modes/prepare.ts';
import { reportMode } from './modes/report.ts';
import type { Results } from '../results/model.ts';
import { progressUi } from '../engine/progress.ts';
import { OutputLayout } from '../run/output-layout.ts';
import { UserError } from '../util/errors.ts';
import { ImageBuildFailed } from '../image/ensure-image.ts';
import { HostNotReady } from '../host/decide.ts';

export const MODES: Record<ActionConfig['mode'], Mode> = {
  run: runMode,
  prepare: prepareMode,
  report: reportMode,
};

export async function main(env: NodeJS.ProcessEnv = process.env, modes = MODES): Promise<void> {
  const warnings: string[] = [];
  let record: StartedRecord | undefined;
  let failed: { cfg: ActionConfig; gh: GitHubContext; label?: string } | undefined;
  try {
    const gh = readContext(env);
    const cfg = parseInputs((n) => core.getInput(n), gh, env);
    setOutputDir(cfg.run.outputDir);
    record = await startRecord(cfg, gh).catch((e: Error) => {
      core.warning(
        `cannot record what this run starts (${e.message}): after a cancel, the post step stops nothing`,
      );
      return undefined;
    });
    // The post step names its partial artifact like the main step would: unique per shard and label.
    const label = jobLabel(cfg);
    if (label) setLabel(label);
    failed = { cfg, gh, ...(label ? { label } : {}) };
    // Progress lines and the engine's news quote test names, reasons and guest lines: fenced (log.ts).
    const progress = progressUi(
      (l) => info(l),
      (l) => {
        warnings.push(l);
        info(`warning: ${l}`);
      },
    );
    // An image build streams into a log group of its own.
    const grouped = buildGroupUi(progress);
    const ui = record ? recordingUi(grouped, record, new OutputLayout(cfg.run.outputDir)) : grouped;
    const results = await modes[cfg.mode]({ cfg, gh, ui, warnings, ...(label ? { label } : {}) });
    if (results) await publishCheck(results, cfg, gh);
    setDone();
    record?.discard();
    if (results && !results.summary.ok) core.setFailed(verdict(results, cfg.annotations));
  } catch (e) {
    // A failed build leaves its log and last lines where the job's reader looks: an artifact and the summary.
    if (e instanceof ImageBuildFailed && failed)
      await reportBuildFailure(e, failed.cfg, failed.gh, failed.label).catch((r: Error) =>
        core.warning(`cannot report the failed build in the summary (${r.message})`),
      );
    // A handled error is a finished step, not a cancel: the post step has nothing to stop or rescue.
    if (e instanceof UserError || e instanceof HostNotReady) {
      setDone();
      record?.discard();
    }
    if (e instanceof HostNotReady && e.problems.some((p) => p.startsWith('mkosi'))) {
      core.setFailed(
        `${e.message}\nIn a workflow, set the input mkosi-release (e.g. 25.3) or add the mkosi project's setup step before this one:  - uses: systemd/mkosi@v25.3`,
      );
    } else if (e instanceof UserError || e instanceof HostNotReady) core.setFailed(e.message);
    else core.setFailed(`itest: internal error: ${(e as Error).stack ?? String(e)}`);
  }
}

/**
 * The record of what this run starts, for the post step (runner/started.ts), outside the workspace: the
 * directories an image is built in and booted from are the Actions cache's, the local cache's build
 * directory and the output directory's throwaway image (cache: false).
 */
async function startRecord(cfg: ActionConfig, gh: GitHubContext): Promise<StartedRecord> {
  const path = join(gh.runnerTemp ?? tmpdir(), `itest-started-${process.pid}.jsonl`);
  const record = await StartedRecord.create(path, [
    imageDir(gh, cfg.run.outputDir),
    join(cfg.run.cacheDir, 'build'),
    new OutputLayout(cfg.run.outputDir).throwawayImage,
  ]);
  setStartedFile(path);
  return record;
}

/** The user's `label` and this job's shard: what tells jobs of one run apart in artifact names. */
function jobLabel(cfg: ActionConfig): string | undefined {
  const shard = cfg.run.shard ? `shard-${cfg.run.shard.index}-of-${cfg.run.shard.total}` : undefined;
  return [cfg.label, shard].filter(Boolean).join('-') || undefined;
}

/** The check run, when `check-name` is set; the Checks API client (limits, slices, read-only tokens) is checks.ts. */
async function publishCheck(r: Results, cfg: ActionConfig, gh: GitHubContext): Promise<void> {
  if (!cfg.checkName) return;
  const res = await publishCheckRun(r, {
    token: cfg.token,
    name: cfg.checkName,
    repository: gh.repository ?? '',
    headSha: checkHeadSha(gh) ?? '',
    ...(gh.apiUrl ? { apiUrl: gh.apiUrl } : {}),
    ...(gh.workspace ? { workspace: gh.workspace } : {}),
    ...(gh.runUrl ? { detailsUrl: gh.runUrl } : {}),
    log: {
      info: (m) => core.info(m),
      notice: (m) => core.notice(m),
      warning: (m) => core.warning(m),
    },
  });
  if (res.url) core.info(`check run ${cfg.checkName}: ${res.url}`);
}

/** The action's main step: inputs -> runner setup -> engine (Actions cache backend) -> GitHub reports. */
import * as core from '@actions/core';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseInputs } from './inputs.ts';
import { allowUserNamespaces, setupRunner } from './runner-setup.ts';
import { loadDurations } from '../shard/durations.ts';
import { report } from './report.ts';
import { prepare } from './prepare.ts';
import { reportShards } from './report-mode.ts';
import { publishCheck } from './check-run.ts';
import { installMkosiRelease } from './mkosi-release.ts';
import { artifactName } from './artifact-name.ts';
import { uploadLogs } from './upload.ts';
import type { ActionConfig } from './inputs.ts';
import type { Results } from '../results/model.ts';
import type { RunOutput, Ui } from '../engine/run.ts';
import { runEngine } from '../engine/run.ts';
import { progressUi } from '../engine/progress.ts';
import { GitHubImageCache, savePolicy } from '../image/github-cache.ts';
import { renderEnvironment, renderReport } from '../results/terminal.ts';
import { UserError } from '../util/errors.ts';
import { HostNotReady } from '../host/decide.ts';

function event(env: NodeJS.ProcessEnv): Record<string, unknown> | undefined {
  try {
    return env.GITHUB_EVENT_PATH
      ? (JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

export async function run(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const warnings: string[] = [];
  try {
    const cfg = parseInputs((n) => core.getInput(n), env);
    core.saveState('output', cfg.run.outputDir);
    // The post step names its partial artifact like the main step would: unique per shard and label.
    const label = jobLabel(cfg);
    if (label) core.saveState('label', label);
    const ui = progressUi(
      (l) => core.info(l),
      (l) => {
        warnings.push(l);
        core.info(`warning: ${l}`);
      },
    );
    if (cfg.mode === 'report') {
      const out = await reportShards(cfg, env, warnings);
      await publishCheck(out.results, cfg, env, event(env));
      core.saveState('done', 'true');
      failUnlessOk(out.results);
      return;
    }
    if (cfg.mkosiRelease) {
      const m = await installMkosiRelease(cfg.mkosiRelease, { env, log: (l) => core.info(l) });
      cfg.run.mkosi = m.command;
    }
    if (cfg.setupRunner) {
      // Prepare builds with mkosi too (user namespaces); only run mode boots VMs (devices).
      await allowUserNamespaces((l) => core.info(l));
      if (cfg.mode === 'run') await setupRunner((l) => core.info(l));
    }
    if (cfg.mode === 'run' && cfg.durationsPath && !cfg.run.durations) {
      const d = await loadDurations(cfg.durationsPath);
      core.info(d.note);
      if (d.durations) cfg.run.durations = d.durations;
    }
    const policy = savePolicy(env.GITHUB_EVENT_NAME, event(env));
    const imageCache = new GitHubImageCache(
      join(env.RUNNER_TEMP ?? cfg.run.outputDir, 'itest-image'),
      policy,
      (w) => ui.warn(w),
    );
    if (cfg.mode === 'prepare') {
      await prepare(cfg, ui, imageCache);
      core.saveState('done', 'true');
      return;
    }
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    const out = await runEngine(cfg.run, ui, controller.signal, { imageCache });
    core.info(renderEnvironment(out.results));
    core.info(renderReport(out.results));
    await report(out.results, cfg, env, warnings, label);
    // results.json now names the log artifact of each test; a shard hands it to the report job.
    await writeFile(out.resultsPath, `${JSON.stringify(out.results, null, 2)}\n`);
    if (cfg.run.shard) await uploadShardResults(out, cfg, env, label!, ui);
    await publishCheck(out.results, cfg, env, event(env));
    core.saveState('done', 'true');
    failUnlessOk(out.results);
  } catch (e) {
    // A handled error is a finished step, not a cancel: the post step has nothing to stop or rescue.
    if (e instanceof UserError || e instanceof HostNotReady) core.saveState('done', 'true');
    if (e instanceof HostNotReady && e.problems.some((p) => p.startsWith('mkosi'))) {
      core.setFailed(
        `${e.message}\nIn a workflow, set the input mkosi-release (e.g. 25.3) or add the mkosi project's setup step before this one:  - uses: systemd/mkosi@v25.3`,
      );
    } else if (e instanceof UserError || e instanceof HostNotReady) core.setFailed(e.message);
    else core.setFailed(`itest: internal error: ${(e as Error).stack ?? String(e)}`);
  }
}

/** The user's `label` and this job's shard: what tells jobs of one run apart in artifact names. */
function jobLabel(cfg: ActionConfig): string | undefined {
  const shard = cfg.run.shard ? `shard-${cfg.run.shard.index}-of-${cfg.run.shard.total}` : undefined;
  return [cfg.label, shard].filter(Boolean).join('-') || undefined;
}

function failUnlessOk(r: Results): void {
  if (r.summary.ok) return;
  const s = r.summary;
  const merge = (r.mergeNotes ?? []).filter((n) => n.level === 'error').length;
  core.setFailed(
    `${s.fail + s.timeout + s.error} of ${s.total} tests did not pass${merge ? ` and the merge found ${merge} problem(s)` : ''} (see the job summary)`,
  );
}

/** A shard's results.json and JUnit go to an artifact of their own, which the report job merges. */
async function uploadShardResults(
  out: RunOutput,
  cfg: ActionConfig,
  env: NodeJS.ProcessEnv,
  label: string,
  ui: Ui,
): Promise<void> {
  const name = artifactName({
    prefix: cfg.resultsArtifactPrefix,
    job: label,
    runAttempt: env.GITHUB_RUN_ATTEMPT ?? '1',
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

/** The action's main step: inputs -> runner setup -> engine (Actions cache backend) -> GitHub reports. */
import * as core from '@actions/core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseInputs } from './inputs.ts';
import { setupRunner } from './runner-setup.ts';
import { report } from './report.ts';
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
    if (cfg.setupRunner) await setupRunner((l) => core.info(l));
    const ui = progressUi(
      (l) => core.info(l),
      (l) => {
        warnings.push(l);
        core.info(`warning: ${l}`);
      },
    );
    const policy = savePolicy(env.GITHUB_EVENT_NAME, event(env));
    const imageCache = new GitHubImageCache(
      join(env.RUNNER_TEMP ?? cfg.run.outputDir, 'itest-image'),
      policy,
      (w) => ui.warn(w),
    );
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    const out = await runEngine(cfg.run, ui, controller.signal, { imageCache });
    core.info(renderEnvironment(out.results));
    core.info(renderReport(out.results));
    await report(out.results, cfg, env, warnings);
    core.saveState('done', 'true');
    if (!out.results.summary.ok) {
      const s = out.results.summary;
      core.setFailed(
        `${s.fail + s.timeout + s.error} of ${s.total} tests did not pass (see the job summary)`,
      );
    }
  } catch (e) {
    if (e instanceof HostNotReady && e.problems.some((p) => p.startsWith('mkosi'))) {
      core.setFailed(
        `${e.message}\nIn a workflow, add the mkosi project's setup step before this one:  - uses: systemd/mkosi@v25.3`,
      );
    } else if (e instanceof UserError || e instanceof HostNotReady) core.setFailed(e.message);
    else core.setFailed(`itest: internal error: ${(e as Error).stack ?? String(e)}`);
  }
}

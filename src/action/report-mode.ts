/** The action's report mode (last job of the reusable workflow): merge every shard into one report. */
import * as core from '@actions/core';
import type { ActionConfig } from './inputs.ts';
import { mergeReport } from '../engine/merge-report.ts';
import { renderReport } from '../results/terminal.ts';
import { report } from './report.ts';
import type { RunOutput } from '../engine/run.ts';

export async function reportShards(
  cfg: ActionConfig,
  env: NodeJS.ProcessEnv,
  warnings: string[],
): Promise<RunOutput> {
  const out = await mergeReport({
    dirs: cfg.mergeDirs,
    ...(cfg.plan ? { plan: cfg.plan } : {}),
    outputDir: cfg.run.outputDir,
  });
  core.info(renderReport(out.results));
  for (const n of out.results.mergeNotes ?? []) if (n.level === 'notice') core.notice(n.message);
  // The logs are in the shards' artifacts already; the merged report links them per test.
  await report(out.results, { ...cfg, uploadLogs: 'none' }, env, warnings);
  return out;
}

/** The report mode (last job of the reusable workflow): every shard's results merged into one report. */
import * as core from '@actions/core';
import type { Mode } from './mode.ts';
import { info } from '../github/log.ts';
import { publishResults } from '../github/publish.ts';
import { mergeReport } from '../../engine/merge-report.ts';
import { renderReport } from '../../results/terminal.ts';

export const reportMode: Mode = async ({ cfg, gh, warnings }) => {
  const out = await mergeReport({
    dirs: cfg.mergeDirs,
    ...(cfg.plan ? { plan: cfg.plan } : {}),
    outputDir: cfg.run.outputDir,
  });
  info(renderReport(out.results));
  for (const n of out.results.mergeNotes ?? []) if (n.level === 'notice') core.notice(n.message);
  // The logs are in the shards' artifacts already; the merged report links them per test.
  await publishResults(out.results, { ...cfg, uploadLogs: 'none' }, gh, warnings);
  return out.results;
};

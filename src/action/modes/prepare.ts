/**
 * The prepare mode (first job of the reusable workflow): restore or build the image once, plan the
 * shards, and hand both to the shard jobs as outputs. No VM boots here.
 */
import * as core from '@actions/core';
import type { Mode } from './mode.ts';
import { jobImageCache } from '../github/actions-cache.ts';
import { jobBaseStore } from '../github/base-cache.ts';
import { codeSpan, mdText } from '../github/markdown.ts';
import { baseState } from '../github/summary.ts';
import { readyRunner } from '../runner/ready.ts';
import { prepareImage } from '../../engine/prepare-image.ts';
import { stopOnSignals } from '../../run/stop-on-signals.ts';
import { loadTests } from '../../engine/load-tests.ts';
import { loadDurations } from '../../shard/durations.ts';
import { planShards } from '../../shard/plan-shards.ts';
import type { ShardPlan } from '../../config/shard-plan.ts';
import type { Environment } from '../../results/model.ts';

export function renderPlan(
  plan: ShardPlan,
  key: string,
  saved: boolean,
  base?: Environment['image']['base'],
): string {
  return [
    `## itest plan: ${plan.shards.reduce((a, s) => a + s.tests.length, 0)} tests in ${plan.total} shard(s)`,
    '',
    `Image ${codeSpan(key)}: ${saved ? 'in the Actions cache for the shard jobs' : '⚠️ not in the Actions cache: each shard job builds it'}. Costs from ${plan.basis === 'durations' ? 'the durations of an earlier run' : 'timeouts (no durations history yet)'}.`,
    '',
    ...(base ? [`Built incrementally: base state ${baseState(base)}.`, ''] : []),
    '| shard | tests | planned VM-seconds |',
    '|---|---|---:|',
    ...plan.shards.map(
      (s) => `| ${s.index}/${plan.total} | ${mdText(s.tests.join(', '))} | ${s.plannedSeconds} |`,
    ),
  ].join('\n');
}

export const prepareMode: Mode = async ({ cfg, gh, ui }) => {
  // Prepare builds with mkosi too (user namespaces), but boots nothing (no devices).
  cfg.run.mkosi = await readyRunner(cfg, (l) => core.info(l), { vms: false, warn: (w) => ui.warn(w) });
  const { selected } = await loadTests(cfg.run);
  ui.planned(selected);
  const d = cfg.durationsPath ? await loadDurations(cfg.durationsPath) : undefined;
  if (d) ui.info(d.note);
  const plan = planShards(selected, cfg.shards, d?.durations);
  // Only looked up on a hit: the shard jobs download the image, this job boots nothing.
  const stored: string[] = [];
  const imageCache = jobImageCache(gh, cfg.run.outputDir, (w) => ui.warn(w), {
    lookupOnly: true,
    onSaved: (key) => stored.push(key),
  });
  // A cancelled job gets SIGINT, then SIGTERM: the build stops at once and nothing is saved.
  const cancel = stopOnSignals((sig, first) =>
    core.info(first ? `${sig}: stopping the image build` : `${sig}: still stopping the image build`),
  );
  // No VM runs here: KVM is not needed, and its absence is no reason for a warning.
  const { image } = await prepareImage(
    { ...cfg.run, kvm: 'no' },
    ui,
    { imageCache, ...jobBaseStore(gh, cfg.run, (w) => ui.warn(w)) },
    cancel,
  );
  const saved = image.cache === 'hit' || stored.includes(image.key);
  if (!saved)
    ui.warn(
      `the image ${image.key} is not in the Actions cache, so every shard job builds it again (the summary says why)`,
    );
  core.setOutput('plan', JSON.stringify(plan));
  core.setOutput('matrix', JSON.stringify({ shard: plan.shards.map((s) => s.index) }));
  core.setOutput('shards', plan.total);
  core.setOutput('cache-key', image.key);
  core.setOutput('cache-hit', image.cache === 'hit');
  core.setOutput('image-saved', saved);
  for (const s of plan.shards)
    ui.info(`shard ${s.index}/${plan.total} (${s.plannedSeconds} s): ${s.tests.join(' ')}`);
  if (cfg.summary) await core.summary.addRaw(renderPlan(plan, image.key, saved, image.base)).write();
  return undefined;
};

/** `itest report --merge`: reads every shard's results, merges them and writes one results.json and JUnit. */
import { loadShardResults } from '../shard/load-results.ts';
import { mergeResults } from '../shard/merge.ts';
import { parseShardPlan, type ShardPlan } from '../config/shard-plan.ts';
import { readInputFile } from '../config/input-file.ts';
import { INPUT_LIMITS } from '../config/settings.ts';
import { OutputLayout } from '../run/output-layout.ts';
import type { RunOutput } from './ui.ts';
import { writeResults } from './write-results.ts';

export async function readPlanFile(path: string): Promise<ShardPlan> {
  const text = await readInputFile(path, INPUT_LIMITS.planBytes, 'a shard plan', `--plan ${path}`);
  return parseShardPlan(text, path);
}

export async function mergeReport(p: {
  dirs: string[];
  plan?: ShardPlan;
  outputDir: string;
}): Promise<RunOutput> {
  const { inputs, problems } = await loadShardResults(p.dirs);
  return writeResults(new OutputLayout(p.outputDir), mergeResults(inputs, p.plan, problems));
}

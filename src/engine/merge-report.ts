/** `itest report --merge`: reads every shard's results, merges them and writes one results.json and JUnit. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadShardResults } from '../shard/load-results.ts';
import { mergeResults } from '../shard/merge.ts';
import { parseShardPlan, type ShardPlan } from '../shard/plan-shards.ts';
import { renderJUnit } from '../results/junit.ts';
import type { RunOutput } from './run.ts';
import { UserError } from '../util/errors.ts';

export async function readPlanFile(path: string): Promise<ShardPlan> {
  const text = await readFile(path, 'utf8').catch((e: Error) => {
    throw new UserError(`--plan ${path}: ${e.message}`);
  });
  return parseShardPlan(text, path);
}

export async function mergeReport(p: {
  dirs: string[];
  plan?: ShardPlan;
  outputDir: string;
}): Promise<RunOutput> {
  const { inputs, problems } = await loadShardResults(p.dirs);
  const results = mergeResults(inputs, p.plan, problems);
  await mkdir(p.outputDir, { recursive: true });
  const resultsPath = join(p.outputDir, 'results.json');
  const junitPath = join(p.outputDir, 'junit.xml');
  await writeFile(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(junitPath, renderJUnit(results));
  return { results, resultsPath, junitPath };
}

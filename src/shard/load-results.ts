/** Finds and reads the results.json files of downloaded shard artifacts (one directory per artifact). */
import { readFile } from 'node:fs/promises';
import { glob } from 'glob';
import { RESULTS_VERSION, type Results } from '../results/model.ts';
import type { ShardResults } from './merge.ts';
import { UserError } from '../util/errors.ts';
import { RESULTS_FILE } from '../run/output-layout.ts';

export async function loadShardResults(
  dirs: string[],
): Promise<{ inputs: ShardResults[]; problems: string[] }> {
  const inputs: ShardResults[] = [];
  const problems: string[] = [];
  for (const dir of dirs) {
    const files = (await glob(`**/${RESULTS_FILE}`, { cwd: dir, absolute: true, nodir: true })).sort();
    if (files.length === 0) problems.push(`${dir}: no ${RESULTS_FILE} in it`);
    for (const f of files) {
      try {
        const r = JSON.parse(await readFile(f, 'utf8')) as Results;
        if (r.version !== RESULTS_VERSION || !Array.isArray(r.tests))
          throw new Error(`not a results.json of version ${RESULTS_VERSION}`);
        inputs.push({ source: f, results: r });
      } catch (e) {
        problems.push(`${f}: unreadable (${(e as Error).message}); its shard counts as missing`);
      }
    }
  }
  if (inputs.length === 0)
    throw new UserError(
      `no shard results found in ${dirs.join(', ')}${problems.length ? ` (${problems.join('; ')})` : ''}. ` +
        'Fix: download every shard results artifact into these directories first',
    );
  return { inputs, problems };
}

/** The one place results.json and junit.xml are written (a run, a merge, the action after its upload). */
import { mkdir, writeFile } from 'node:fs/promises';
import type { Results } from '../results/model.ts';
import { renderJUnit } from '../results/junit.ts';
import type { OutputLayout } from '../run/output-layout.ts';
import type { RunOutput } from './ui.ts';

export async function writeResults(layout: OutputLayout, results: Results): Promise<RunOutput> {
  await mkdir(layout.dir, { recursive: true });
  await writeFile(layout.results, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(layout.junit, renderJUnit(results));
  return { results, resultsPath: layout.results, junitPath: layout.junit };
}

/** The one place results.json and junit.xml are written (a run, a merge, the action after its upload). */
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Results } from '../results/model.ts';
import { renderJUnit } from '../results/junit.ts';
import { locateTests } from '../config/test-locations.ts';
import type { OutputLayout } from '../run/output-layout.ts';
import type { RunOutput } from './ui.ts';

/**
 * Writes a new file under a fresh name (O_EXCL: never through a symlink), then renames it over `path`:
 * rename replaces whatever is there, a planted symlink included, without following it, and a reader never
 * sees half a file.
 */
async function replaceFile(path: string, data: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, data, { flag: 'wx' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export async function writeResults(layout: OutputLayout, results: Results): Promise<RunOutput> {
  await mkdir(layout.dir, { recursive: true });
  await replaceFile(layout.results, `${JSON.stringify(results, null, 2)}\n`);
  // JUnit consumers annotate `file` relative to their working directory: in CI, like here, the checkout.
  const locations = locateTests(results.config, results.tests, process.cwd(), { manifestFallback: true });
  await replaceFile(layout.junit, renderJUnit(results, { locations }));
  return { results, resultsPath: layout.results, junitPath: layout.junit };
}

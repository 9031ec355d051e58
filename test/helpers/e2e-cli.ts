/**
 * The end-to-end tests' way to run the bundled CLI (dist/cli/index.js) from the repository root, read
 * what it left (results.json checked against its schema, journals through the real journalctl) and print
 * the run's figures.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Results, TestResult } from '../../src/results/model.ts';
import { assertValidResults } from './results.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const CLI = join(ROOT, 'dist/cli/index.js');

export interface CliRun {
  code: number | null;
  out: string;
  err: string;
  seconds: number;
}

export function itest(args: string[]): Promise<CliRun> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => resolve({ code, out, err, seconds: (performance.now() - t0) / 1000 }));
  });
}

export async function readResults(dir: string): Promise<Results> {
  const r = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as Results;
  assertValidResults(r);
  return r;
}

export function journal(file: string, ...args: string[]): string {
  const r = spawnSync('journalctl', ['--file', file, '--no-pager', '-q', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `journalctl --file ${file} failed: ${r.stderr}`);
  return r.stdout;
}

export const byName = (r: Results, name: string): TestResult => {
  const t = r.tests.find((x) => x.name === name);
  assert.ok(t, `${name} missing from results`);
  return t;
};

/** One `# label: ...` line: the run's wall, the image's cache outcome, each test's VM and queue time. */
export function printTimings(label: string, r: Results, run: CliRun, extra = ''): void {
  const img = r.environment.image;
  console.log(
    `# ${label}: wall ${run.seconds.toFixed(1)} s; image ${img.cache} (restore ${img.restoreSeconds ?? '-'} s, build ${img.buildSeconds ?? '-'} s, save ${img.saveSeconds ?? '-'} s); ${extra}` +
      r.tests
        .map(
          (t) =>
            `${t.name}: ${t.status} vm ${t.timings.vmSeconds} s + collect ${t.timings.collectSeconds} s, queued ${t.timings.queuedSeconds} s`,
        )
        .join('; '),
  );
}

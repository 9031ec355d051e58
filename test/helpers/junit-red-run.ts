/**
 * A red run of 25 tests (pass, fail, timeout, error, skip; three with subtests) and the repository it came
 * from: systemd's `src/core/service.c` (what a dotted classname used to resolve to), unit files in the
 * config's mkosi.extra/ for some tests, manifest entries for others, neither for two.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Status, TestResult } from '../../src/results/model.ts';
import type { Subtest } from '../../src/digest/model.ts';
import { results, testResult } from './results.ts';
import { digestOf } from './red-run.ts';

const STATUSES: Status[] = [
  ...Array<Status>(10).fill('pass'),
  ...Array<Status>(6).fill('fail'),
  ...Array<Status>(3).fill('timeout'),
  ...Array<Status>(2).fill('error'),
  ...Array<Status>(4).fill('skip'),
];

const REASONS: Record<Status, string> = {
  pass: 'unit succeeded',
  fail: 'exit status 1, expected 123 (SERVICE_RESULT=exit-code EXIT_STATUS=1)',
  timeout: 'no result within 360 s; the VM was stopped',
  error: 'the VM could not boot: mkosi exited with 1',
  skip: 'the test skipped itself (exit status 77)',
};

/** Subtests of three tests: a failing one, a passing one, a failing one with an error subtest. */
export const SUBTESTS: Record<string, Subtest[]> = {
  'TEST-11-FAIL': [
    { name: 'one', result: 'pass', message: 'ok' },
    { name: 'two', result: 'fail', message: 'two broke\ndetail' },
    { name: 'three', result: 'skip', message: 'not on this arch' },
  ],
  'TEST-02-PASS': [
    { name: 'alpha', result: 'pass', message: '' },
    { name: 'beta', result: 'pass', message: '' },
  ],
  'TEST-12-FAIL': [{ name: 'gamma', result: 'error', message: '\nassertion failed: x == 1\n' }],
};

/** Tests in neither mkosi.extra/ nor the manifest: annotated on the manifest's line 1. */
export const UNLISTED = ['TEST-09-PASS', 'TEST-20-ERROR'];

const name = (i: number, s: Status) => `TEST-${String(i + 1).padStart(2, '0')}-${s.toUpperCase()}`;

function digest(subtests: Subtest[]): TestResult['digest'] {
  return digestOf({ subtests });
}

export function redRunTests(): TestResult[] {
  return STATUSES.map((s, i) => {
    const n = name(i, s);
    const subs = SUBTESTS[n];
    return testResult(n, s, { reason: REASONS[s], ...(subs ? { digest: digest(subs) } : {}) });
  });
}

/** Even-numbered tests have a unit file in mkosi.extra/, odd ones a manifest entry, except UNLISTED. */
export const hasUnitFile = (t: Pick<TestResult, 'name'>) =>
  !UNLISTED.includes(t.name) && Number(t.name.slice(5, 7)) % 2 === 0;

export const UNIT_DIR = 'mkosi/mkosi.extra/usr/lib/systemd/system';
export const MANIFEST = 'mkosi/itest.yaml';

/** Writes the repository into `repo`; returns the manifest line of each listed test. */
export async function writeRepo(repo: string, tests: readonly TestResult[]): Promise<Map<string, number>> {
  await mkdir(join(repo, 'src/core'), { recursive: true });
  await writeFile(join(repo, 'src/core/service.c'), '/* systemd */\nint main(void) { return 0; }\n');
  await mkdir(join(repo, UNIT_DIR), { recursive: true });
  const lines = ['version: 1', 'tests:'];
  const at = new Map<string, number>();
  for (const t of tests) {
    if (hasUnitFile(t)) {
      await writeFile(join(repo, UNIT_DIR, t.unit), '[Service]\nType=oneshot\nExecStart=/usr/bin/true\n');
    } else if (!UNLISTED.includes(t.name)) {
      lines.push(`  - name: ${t.name}`);
      at.set(t.name, lines.length);
      lines.push('    timeout: 360');
    }
  }
  await writeFile(join(repo, MANIFEST), `${lines.join('\n')}\n`);
  return at;
}

export function redRun(repo: string, tests = redRunTests()) {
  const r = results(tests);
  r.config = { dir: join(repo, 'mkosi'), manifest: join(repo, MANIFEST) };
  return r;
}

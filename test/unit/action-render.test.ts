import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderSummary, timeline, reproCommands, headline } from '../../src/action/github/summary.ts';
import { annotations, MAX_ERRORS_PER_STEP, verdict } from '../../src/action/github/annotations.ts';
import { artifactName, sanitizeArtifactPart } from '../../src/action/github/artifact-name.ts';
import { results, testResult } from '../helpers/results.ts';
import { runStep } from '../helpers/action-step.ts';
import { digestOf } from '../helpers/red-run.ts';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;

const ctx = {
  runId: '42',
  repository: 'systemd/demo',
  artifactName: 'itest-logs-test-x86_64-attempt1',
  downloadDir: 'itest-logs',
};

describe('job summary', () => {
  const r = results([
    testResult('A', 'pass'),
    testResult('B', 'fail', {
      reason: 'exit status 1, expected 123',
      outputTail: ['B: step 2 failed', 'B: ``` fence'],
    }),
    testResult('C|pipe', 'timeout'),
  ]);

  it('has the verdict, environment, a row per test and a failure section with repro commands', () => {
    const md = renderSummary(r, ctx);
    assert.match(headline(r), /❌ itest: 1 passed · 1 failed · 0 skipped · 1 timed out · 0 errors/);
    assert.match(md, /\| accelerator \| tcg ⚠️ software emulation \|/);
    assert.match(md, /\| image cache \| hit \(restored in 0 s\): `itest-image-x86_64-mkosi24\.3-abc` \|/);
    assert.match(md, /\| ✅ \| A \| 40\.5 s \| 1 \| pass reason \|/);
    assert.match(md, /\| ⏱️ \| C\\\|pipe \|/, 'pipes in names are escaped');
    assert.match(md, /<summary>❌ <b>B<\/b>: exit status 1, expected 123<\/summary>/);
    assert.match(md, /B: step 2 failed/);
    // Kept verbatim inside a fence longer than its own backticks, so guest text cannot close it.
    assert.match(md, /\n````text\nB: step 2 failed\nB: ``` fence\n````\n/);
    assert.match(
      md,
      /gh run download 42 -R systemd\/demo -n 'itest-logs-test-x86_64-attempt1' -D itest-logs/,
    );
    assert.match(md, /journalctl --file itest-logs\/B\.journal -u B\.service -o short-monotonic -p info/);
    assert.ok(!md.includes('<b>A</b>'), 'no details for passing tests');
    const withSubtests = results([
      testResult('S', 'fail', {
        digest: digestOf({
          entries: 1,
          subtests: [
            { name: 'first', result: 'pass', message: 'fine' },
            { name: 'second', result: 'fail', message: 'broke\ndetails' },
          ],
        }),
      }),
    ]);
    const sub = renderSummary(withSubtests, ctx);
    assert.match(
      sub,
      /\| ❌ \| S \|[^\n]*\n\| ✅ \| ↳ first \| \| \| pass: fine \|\n\| ❌ \| ↳ second \| \| \| fail: broke \|/,
    );
  });

  it('draws every attempt on a mermaid timeline, offsets as HH:mm:ss (dateFormat s reads only 0-59)', () => {
    const late = testResult('LATE', 'fail');
    late.attempts[0]!.startedAt = '2026-11-27T01:02:05.000Z'; // 3725 s after the start
    const lines = timeline(results([...r.tests, late, testResult('title x', 'pass')]));
    assert.equal(lines[0], '```mermaid');
    assert.ok(lines.includes('gantt'));
    assert.ok(lines.includes('    dateFormat HH:mm:ss') && lines.includes('    todayMarker off'));
    assert.ok(lines.includes('    axisFormat %H:%M'), 'a run past an hour reads hours:minutes');
    assert.ok(lines.includes('    A :done, 00:00:00, 40s'), lines.join('\n'));
    assert.ok(lines.includes('    B :crit, 00:00:00, 40s'));
    assert.ok(lines.includes('    LATE :crit, 01:02:05, 40s'));
    assert.ok(lines.includes('    test title x :done, 00:00:00, 40s'), 'a keyword is not a label');
    assert.ok(timeline(r).includes('    axisFormat %M:%S'), 'under an hour minutes:seconds');
  });

  it('stays under the size limit and says what it dropped', () => {
    const many = results(
      Array.from({ length: 50 }, (_, i) =>
        testResult(`T${i}`, 'fail', { outputTail: Array.from({ length: 20 }, () => 'x'.repeat(200)) }),
      ),
    );
    const md = renderSummary(many, ctx, [], 64 * 1024);
    assert.ok(Buffer.byteLength(md) <= 64 * 1024, `${Buffer.byteLength(md)} bytes`);
    assert.match(
      md,
      /Summary truncated to stay under GitHub's 64 KiB limit: details of \d+ more failure\(s\)/,
    );
    assert.ok(md.includes('<b>T0</b>'));
  });

  it('repro commands without an artifact still show the local ones', () => {
    const cmds = reproCommands(testResult('B', 'fail'), { downloadDir: 'itest-results' });
    assert.ok(!cmds.some((c) => c.startsWith('gh run download')));
    assert.ok(cmds.some((c) => c.startsWith('journalctl --file itest-results/B.journal')));
    assert.ok(cmds.at(-1)!.startsWith('itest run --config . --test B'));
  });
});

describe('annotations', () => {
  it('one error per failed test with reason and last lines; nothing for passes', () => {
    const a = annotations(
      results([testResult('A', 'pass'), testResult('B', 'fail'), testResult('C', 'timeout')]),
      ['KVM missing'],
    );
    assert.deepEqual(
      a.map((x) => [x.level, x.title]),
      [
        ['error', 'itest: B failed'],
        ['error', 'itest: C timed out'],
        ['warning', 'itest'],
      ],
    );
    assert.match(a[0]!.message, /fail reason\n {2}B: hello\nrerun: itest run/);
  });

  it('leaves one of the 10 error slots to the verdict, which names the failures without an annotation', () => {
    for (const n of [9, 10, 12, 60]) {
      const r = results(Array.from({ length: n }, (_, i) => testResult(`T${i}`, 'fail')));
      const errors = annotations(r).filter((x) => x.level === 'error');
      assert.equal(errors.length, Math.min(n, MAX_ERRORS_PER_STEP - 1), `${n} failures`);
      const v = verdict(r);
      assert.match(v, new RegExp(`^${n} of ${n} tests did not pass \\(see the job summary\\)`));
      if (n > 9) assert.match(v, new RegExp(`and ${n - 9} more failure\\(s\\) than annotations \\(T9`), v);
      else assert.doesNotMatch(v, /more failure/);
      // Without annotations, nothing is "more".
      assert.doesNotMatch(verdict(r, false), /more failure/);
    }
    const v60 = verdict(results(Array.from({ length: 60 }, (_, i) => testResult(`T${i}`, 'fail'))));
    assert.match(v60, /T28, \.\.\.\): see the job summary$/, 'at most 20 names');
  });

  it('the report step prints at most 10 ::error lines, the verdict among them (9, 10, 12 and 60 failures)', async () => {
    for (const n of [9, 10, 12, 60]) {
      const dl = await mkdtemp(join(tmpdir(), 'itest-verdict-'));
      const r = {
        ...results([
          testResult('OK', 'pass'),
          ...Array.from({ length: n }, (_, i) => testResult(`T${i}`, 'fail')),
        ]),
        shard: { index: 1, total: 1, attempt: 1, plannedSeconds: 100 },
      };
      await mkdir(join(dl, 'itest-results-shard-1'));
      await writeFile(join(dl, 'itest-results-shard-1', 'results.json'), JSON.stringify(r));
      const step = await runStep({
        argv: ['--import', 'tsx', join(ROOT, 'src/action/main-entry.ts')],
        cwd: ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_WORKSPACE: ROOT, INPUT_MODE: 'report' },
        inputs: { merge: dl },
        prepare: (dir) => ({ INPUT_OUTPUT: join(dir, 'merged') }),
      });
      assert.equal(step.code, 1, step.stdout.slice(-2000));
      const errors = step.stdout.split('\n').filter((l) => l.startsWith('::error'));
      assert.ok(errors.length <= MAX_ERRORS_PER_STEP, `${n} failures: ${errors.length} errors`);
      assert.equal(errors.length, Math.min(n, 9) + 1, `${n}: ${errors.join('\n')}`);
      const last = errors.at(-1)!;
      assert.match(last, new RegExp(`^::error::${n} of ${n + 1} tests did not pass`));
      if (n > 9) assert.match(last, new RegExp(`and ${n - 9} more failure\\(s\\) than annotations`));
    }
  });
});

describe('artifact names', () => {
  it('are unique across jobs, shards, re-runs and architectures and carry no forbidden characters', () => {
    const names = new Set<string>();
    for (const job of ['test', 'itest'])
      for (const label of [undefined, 'shard-1', 'shard-2'])
        for (const attempt of ['1', '2'])
          for (const arch of ['x86_64', 'aarch64'])
            names.add(artifactName({ prefix: 'itest-logs', job, label, runAttempt: attempt, arch }));
    assert.equal(names.size, 2 * 3 * 2 * 2);
    const weird = artifactName({
      prefix: 'itest-logs',
      job: 'a/b:c',
      label: 'x "y" <z>|*?\\',
      runAttempt: '1',
      arch: 'x86_64',
    });
    assert.doesNotMatch(weird, /["':<>|*?\r\n\\/ ]/);
    assert.equal(sanitizeArtifactPart('///'), '_');
  });
});

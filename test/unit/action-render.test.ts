import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderSummary, timeline, reproCommands, headline } from '../../src/action/github/summary.ts';
import { annotations, MAX_ERRORS_PER_STEP } from '../../src/action/github/annotations.ts';
import { artifactName, sanitizeArtifactPart } from '../../src/action/github/artifact-name.ts';
import { results, testResult } from '../helpers/results.ts';

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
        digest: {
          entries: 1,
          unitOutput: [],
          failedUnits: [],
          errors: [],
          coredumps: [],
          sanitizers: [],
          kernel: [],
          emergency: false,
          lastLines: [],
          notes: [],
          subtests: [
            { name: 'first', result: 'pass', message: 'fine' },
            { name: 'second', result: 'fail', message: 'broke\ndetails' },
          ],
        },
      }),
    ]);
    const sub = renderSummary(withSubtests, ctx);
    assert.match(
      sub,
      /\| ❌ \| S \|[^\n]*\n\| ✅ \| ↳ first \| \| \| pass: fine \|\n\| ❌ \| ↳ second \| \| \| fail: broke \|/,
    );
  });

  it('draws every attempt on a mermaid timeline', () => {
    const lines = timeline(r);
    assert.equal(lines[0], '```mermaid');
    assert.ok(lines.includes('gantt'));
    assert.ok(
      lines.some((l) => /^ {4}A :done, 0, 40s$/.test(l)),
      lines.join('\n'),
    );
    assert.ok(lines.some((l) => /^ {4}B :crit, 0, 40s$/.test(l)));
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

  it('respects the per-step error limit with an overflow note', () => {
    const a = annotations(results(Array.from({ length: 14 }, (_, i) => testResult(`T${i}`, 'fail'))));
    const errors = a.filter((x) => x.level === 'error');
    assert.equal(errors.length, MAX_ERRORS_PER_STEP);
    assert.match(errors.at(-1)!.title, /5 more failing test\(s\)/);
    assert.match(errors.at(-1)!.message, /T9, T10, T11, T12, T13/);
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

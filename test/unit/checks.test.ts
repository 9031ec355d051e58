import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ANNOTATIONS_PER_REQUEST,
  MESSAGE_LIMIT,
  OUTPUT_LIMIT,
  annotationMessage,
  buildCheckRun,
  checkHeadSha,
  checkTitle,
  fitMarkdown,
  locateTests,
  manifestLine,
  publishCheckRun,
  sliceCheckRun,
  type CheckLog,
} from '../../src/action/github/checks.ts';
import { readContext, type GitHubEvent } from '../../src/action/github/context.ts';
import { GitHubApiStandin, startGitHubApiStandin } from '../helpers/github-api-standin.ts';
import { results, testResult } from '../helpers/results.ts';
import type { Results } from '../../src/results/model.ts';

const SHA = 'a'.repeat(40);
const bytes = (s: string) => Buffer.byteLength(s);

function recorder(): CheckLog & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  return {
    lines,
    info: (m) => lines.push({ level: 'info', message: m }),
    notice: (m) => lines.push({ level: 'notice', message: m }),
    warning: (m) => lines.push({ level: 'warning', message: m }),
  };
}

/** n failing tests named T-000..., with a pass and a skip in front. */
function manyFailures(n: number): Results {
  return results([
    testResult('OK', 'pass'),
    testResult('SKIPPED', 'skip'),
    ...Array.from({ length: n }, (_, i) => testResult(`T-${String(i).padStart(3, '0')}`, 'fail')),
  ]);
}

const params = { name: 'itest', headSha: SHA, workspace: '/' };

describe('check-run payload (pure)', () => {
  it('concludes success only when the verdict is ok; nothing ran is a failure', () => {
    const pass = buildCheckRun(results([testResult('A', 'pass'), testResult('B', 'skip')]), params);
    assert.equal(pass.conclusion, 'success');
    assert.equal(pass.status, 'completed');
    assert.equal(pass.output.annotations.length, 0);
    assert.equal(pass.output.title, '2 tests: 1 passed, 0 failed, 1 skipped, 0 timed out, 0 errors');
    for (const s of ['fail', 'timeout', 'error'] as const) {
      const run = buildCheckRun(results([testResult('A', 'pass'), testResult('B', s)]), params);
      assert.equal(run.conclusion, 'failure', s);
      assert.equal(run.output.annotations.length, 1);
    }
    const none = results([]);
    assert.equal(buildCheckRun(none, params).conclusion, 'failure');
    assert.equal(checkTitle(none), 'no tests ran');
    assert.match(
      checkTitle(results([testResult('A', 'pass'), testResult('B', 'timeout')])),
      /^1 of 2 tests did not pass: 1 passed, 0 failed, 0 skipped, 1 timed out, 0 errors$/,
    );
  });

  it('carries name, head SHA, times, details URL and one failure annotation per failed test', () => {
    const r = results([
      testResult('A', 'pass'),
      testResult('B', 'fail', { reason: 'exit status 1, expected 123', outputTail: ['one', 'two'] }),
      testResult('C', 'timeout', { reason: 'no result within 360 s' }),
    ]);
    r.config = { dir: '/ws/mkosi', manifest: '/ws/mkosi/itest.yaml' };
    const run = buildCheckRun(r, {
      name: 'itest (x86_64)',
      headSha: SHA,
      workspace: '/ws',
      detailsUrl: 'https://github.com/o/r/actions/runs/1',
    });
    assert.equal(run.name, 'itest (x86_64)');
    assert.equal(run.head_sha, SHA);
    assert.equal(run.started_at, r.startedAt);
    assert.equal(run.completed_at, r.finishedAt);
    assert.equal(run.details_url, 'https://github.com/o/r/actions/runs/1');
    assert.match(run.output.summary, /^## ❌ itest: 1 passed · 1 failed/);
    const [b, c] = run.output.annotations;
    assert.deepEqual(
      { ...b, message: undefined },
      {
        path: 'mkosi/itest.yaml',
        start_line: 1,
        end_line: 1,
        annotation_level: 'failure',
        title: 'B',
        message: undefined,
      },
    );
    assert.equal(
      b!.message,
      'B failed: exit status 1, expected 123\n\nlast lines of the unit:\n  one\n  two\n\nrerun: itest run --config . --test B',
    );
    assert.match(c!.message, /^C timed out: no result within 360 s/);
  });

  it('annotates the unit file, else the manifest entry, else the manifest (paths relative to the workspace)', () => {
    const ws = mkdtempSync(join(tmpdir(), 'itest-checks-'));
    try {
      const units = join(ws, 'mkosi', 'mkosi.extra', 'usr', 'lib', 'systemd', 'system');
      mkdirSync(units, { recursive: true });
      writeFileSync(join(units, 'TEST-A.service'), '[Service]\nType=oneshot\n');
      writeFileSync(join(units, 'TEST-E@.service'), '[Service]\nType=oneshot\n');
      writeFileSync(
        join(ws, 'mkosi', 'itest.yaml'),
        'version: 1\ntests:\n  - name: TEST-A\n  - name: "TEST-B" # listed\n    should-fail: true\n',
      );
      const r = results([
        testResult('TEST-A', 'fail'),
        testResult('TEST-B', 'error'),
        testResult('TEST-C', 'fail'),
        testResult('TEST-D', 'pass'),
        testResult('TEST-E', 'fail', { unit: 'TEST-E@1.service' }),
      ]);
      r.config = { dir: join(ws, 'mkosi'), manifest: join(ws, 'mkosi', 'itest.yaml') };
      const locations = locateTests(r, ws);
      assert.deepEqual(Object.fromEntries(locations), {
        'TEST-A': { path: 'mkosi/mkosi.extra/usr/lib/systemd/system/TEST-A.service', line: 1 },
        'TEST-B': { path: 'mkosi/itest.yaml', line: 4 },
        'TEST-E': { path: 'mkosi/mkosi.extra/usr/lib/systemd/system/TEST-E@.service', line: 1 },
      });
      const anns = buildCheckRun(r, { ...params, workspace: ws, locations }).output.annotations;
      assert.deepEqual(
        anns.map((a) => `${a.title} ${a.path}:${a.start_line}-${a.end_line}`),
        [
          'TEST-A mkosi/mkosi.extra/usr/lib/systemd/system/TEST-A.service:1-1',
          'TEST-B mkosi/itest.yaml:4-4',
          'TEST-C mkosi/itest.yaml:1-1',
          'TEST-E mkosi/mkosi.extra/usr/lib/systemd/system/TEST-E@.service:1-1',
        ],
      );
      // A manifest outside the workspace: its base name, never a path climbing out with '..'.
      const outside = buildCheckRun(r, { ...params, workspace: join(ws, 'elsewhere') }).output.annotations;
      assert.ok(outside.every((a) => a.path === 'itest.yaml'));
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
    assert.equal(
      manifestLine('tests:\n- name: X.Y\n- name: X-Y\n', 'X-Y'),
      3,
      'the name is matched literally',
    );
    assert.equal(manifestLine('tests:\n- name: TEST-10\n', 'TEST-1'), undefined);
  });

  it('keeps messages, raw details and titles within the API limits', () => {
    const t = testResult('N'.repeat(300), 'fail', {
      reason: 'r'.repeat(70_000),
      outputTail: Array.from({ length: 100 }, (_, i) => `line ${i} ${'€'.repeat(2000)}`),
    });
    const message = annotationMessage(t);
    assert.ok(bytes(message) <= MESSAGE_LIMIT, `${bytes(message)} bytes`);
    assert.match(message, /… \(truncated\)$/);
    const [a] = buildCheckRun(results([t]), params).output.annotations;
    assert.ok(a!.title.length <= 255);
    // The last lines are the ones kept, each clipped.
    const short = annotationMessage({ ...t, reason: 'boom' });
    assert.match(short, /line 99 €+…$/m);
    assert.ok(!short.includes('line 79 '), 'only the last 20 lines');
  });

  it('truncates the summary under 65535 bytes (emoji count as 4), closing an open fence, with a note', () => {
    const md = `## title\n\n<details><summary>x</summary>\n\n\`\`\`text\n${'💥 crash line\n'.repeat(20_000)}`;
    const { text, truncated } = fitMarkdown(md);
    assert.ok(truncated);
    assert.ok(bytes(text) <= OUTPUT_LIMIT && text.length <= OUTPUT_LIMIT, `${bytes(text)} bytes`);
    assert.ok(bytes(text) > OUTPUT_LIMIT - 1000, 'uses the room it has');
    assert.match(
      text,
      /💥 crash line\n```\n<\/details>\n\n> ⚠️ Truncated to stay under the Checks API's limit of 65535 bytes: \d+ more bytes/,
    );
    assert.deepEqual(fitMarkdown('short'), { text: 'short', truncated: false });
    // The default summary (rendered from the results) of a huge run fits as well.
    const big = results(
      Array.from({ length: 400 }, (_, i) =>
        testResult(`T-${i}`, 'fail', { outputTail: Array.from({ length: 30 }, () => '❌'.repeat(100)) }),
      ),
    );
    const run = buildCheckRun(big, params);
    assert.ok(bytes(run.output.summary) <= OUTPUT_LIMIT);
    assert.equal(run.output.annotations.length, 400);
  });

  it('slices annotations: the create takes the first 50, each update the next 50', () => {
    const run = buildCheckRun(manyFailures(120), params);
    const { create, updates } = sliceCheckRun(run);
    assert.equal(create.output.annotations.length, 50);
    assert.deepEqual(
      updates.map((u) => u.output.annotations.length),
      [50, 20],
    );
    assert.ok(
      updates.every((u) => u.output.title === run.output.title && u.output.summary === run.output.summary),
    );
    assert.deepEqual(
      [create, ...updates].flatMap((x) => x.output.annotations.map((a) => a.title)),
      run.output.annotations.map((a) => a.title),
    );
    assert.equal(sliceCheckRun(buildCheckRun(manyFailures(50), params)).updates.length, 0);
    assert.equal(sliceCheckRun(buildCheckRun(manyFailures(51), params)).updates.length, 1);
  });

  it('puts the check on the pull request head, the workflow_run head, else GITHUB_SHA', () => {
    // The environment and event as the runner gives them, read as the action reads them.
    const headSha = (env: NodeJS.ProcessEnv, event: GitHubEvent | undefined) =>
      checkHeadSha(readContext(env, event));
    const env = { GITHUB_SHA: 'merge-sha', GITHUB_EVENT_NAME: 'pull_request' };
    assert.equal(headSha(env, { pull_request: { head: { sha: 'head-sha' } } }), 'head-sha');
    assert.equal(
      headSha(
        { ...env, GITHUB_EVENT_NAME: 'pull_request_target' },
        { pull_request: { head: { sha: 'h2' } } },
      ),
      'h2',
    );
    assert.equal(
      headSha({ ...env, GITHUB_EVENT_NAME: 'workflow_run' }, { workflow_run: { head_sha: 'wr-sha' } }),
      'wr-sha',
    );
    assert.equal(headSha({ GITHUB_SHA: 'push-sha', GITHUB_EVENT_NAME: 'push' }, { after: 'x' }), 'push-sha');
    assert.equal(headSha({ GITHUB_SHA: 'push-sha' }, undefined), 'push-sha');
    assert.equal(headSha({}, undefined), undefined);
  });
});

describe('publishCheckRun against the REST API stand-in', () => {
  let api: GitHubApiStandin;
  before(async () => {
    api = await startGitHubApiStandin();
  });
  after(async () => {
    await api.stop();
  });
  beforeEach(() => {
    api.mode = 'ok';
    api.requests.length = 0;
  });
  const opts = (log: CheckLog) => ({
    token: 'ghs_test',
    name: 'itest',
    repository: 'systemd/demo',
    headSha: SHA,
    apiUrl: api.url,
    workspace: '/',
    detailsUrl: 'https://github.com/systemd/demo/actions/runs/7',
    log,
  });

  it('the stand-in rejects what GitHub rejects', async () => {
    const post = (body: unknown) =>
      fetch(`${api.url}/repos/o/r/check-runs`, {
        method: 'POST',
        headers: { authorization: 'token x', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const base = { name: 'n', head_sha: SHA, status: 'completed', conclusion: 'success' };
    const ann = { path: 'a', start_line: 1, end_line: 1, annotation_level: 'failure', message: 'm' };
    const output = (over: object) => ({ ...base, output: { title: 't', summary: 's', ...over } });
    assert.equal((await post(output({ annotations: Array(50).fill(ann) }))).status, 201);
    const tooMany = await post(output({ annotations: Array(51).fill(ann) }));
    assert.equal(tooMany.status, 422);
    assert.match(((await tooMany.json()) as { message: string }).message, /Only 50 annotations/);
    assert.equal((await post(output({ summary: 'x'.repeat(65536) }))).status, 422);
    const emoji = await post(output({ summary: '💥'.repeat(20_000) })); // 40000 UTF-16 units, 80000 bytes
    assert.equal(emoji.status, 422);
    assert.match(JSON.stringify(await emoji.json()), /maximum bytesize of 65535/);
  });

  it('creates the run, then appends more than 50 annotations in slices of 50, each exactly once and in order', async () => {
    const log = recorder();
    const r = manyFailures(120);
    const t0 = performance.now();
    const out = await publishCheckRun(r, opts(log));
    const ms = performance.now() - t0;
    assert.ok(out.id !== undefined && out.skipped === undefined, JSON.stringify(out));
    assert.equal(out.url, `https://github.com/systemd/demo/runs/${out.id}`);
    assert.deepEqual(
      api.requests.map((q) => `${q.method} ${q.path} ${q.status}`),
      [
        'POST /repos/systemd/demo/check-runs 201',
        `PATCH /repos/systemd/demo/check-runs/${out.id} 200`,
        `PATCH /repos/systemd/demo/check-runs/${out.id} 200`,
      ],
    );
    assert.ok(api.requests.every((q) => q.authorization === 'token ghs_test'));
    assert.deepEqual(
      api.requests.map((q) => (q.body as { output: { annotations: unknown[] } }).output.annotations.length),
      [ANNOTATIONS_PER_REQUEST, ANNOTATIONS_PER_REQUEST, 20],
    );
    const names = api.annotations(out.id!).map((a) => a.title);
    assert.deepEqual(
      names,
      Array.from({ length: 120 }, (_, i) => `T-${String(i).padStart(3, '0')}`),
    );
    const stored = api.runs.get(out.id!)!;
    assert.equal(stored.head_sha, SHA);
    assert.equal(stored.status, 'completed');
    assert.equal(stored.conclusion, 'failure');
    assert.equal(stored.details_url, 'https://github.com/systemd/demo/actions/runs/7');
    assert.equal(stored.output.title, checkTitle(r));
    assert.deepEqual(
      log.lines.map((l) => l.level),
      ['info'],
    );
    assert.match(
      log.lines[0]!.message,
      /published: https:\/\/github\.com\/systemd\/demo\/runs\/\d+, 120 annotation\(s\) in 3 request\(s\)/,
    );
    console.log(`# 120 failures published in 3 requests, ${ms.toFixed(0)} ms`);
  });

  it('a passing run is one request with no annotations and the given summary', async () => {
    const out = await publishCheckRun(results([testResult('A', 'pass')]), {
      ...opts(recorder()),
      summaryMarkdown: '## all good',
    });
    assert.equal(api.requests.length, 1);
    const stored = api.runs.get(out.id!)!;
    assert.equal(stored.conclusion, 'success');
    assert.equal(stored.output.summary, '## all good');
    assert.equal(stored.annotations.length, 0);
  });

  it('a summary over the limit is truncated and accepted', async () => {
    const log = recorder();
    const huge = `## big\n\n${'| ❌ | a row of a very large table |\n'.repeat(10_000)}`;
    const out = await publishCheckRun(manyFailures(3), { ...opts(log), summaryMarkdown: huge });
    assert.ok(out.id !== undefined, JSON.stringify(log.lines));
    const summary = api.runs.get(out.id!)!.output.summary!;
    assert.ok(bytes(summary) <= OUTPUT_LIMIT);
    assert.match(summary, /Truncated to stay under the Checks API's limit/);
  });

  it('a read-only token (fork pull request) is skipped with a notice, not an error', async () => {
    api.mode = 'read-only';
    const log = recorder();
    const out = await publishCheckRun(manyFailures(2), opts(log));
    assert.deepEqual(Object.keys(out), ['skipped']);
    assert.match(out.skipped!, /HTTP 403: Resource not accessible by integration/);
    assert.deepEqual(
      log.lines.map((l) => l.level),
      ['notice'],
    );
    assert.match(log.lines[0]!.message, /job summary and the annotations carry the results/);
    assert.match(log.lines[0]!.message, /checks: write/);
    assert.equal(api.requests.length, 1, 'gives up after the create');
  });

  it('no token: skipped with a notice, no request', async () => {
    const log = recorder();
    const out = await publishCheckRun(manyFailures(1), { ...opts(log), token: '' });
    assert.equal(out.skipped, 'no token to create a check run with');
    assert.deepEqual(
      log.lines.map((l) => l.level),
      ['notice'],
    );
    assert.equal(api.requests.length, 0);
    const noSha = await publishCheckRun(manyFailures(1), { ...opts(log), headSha: undefined });
    assert.match(noSha.skipped!, /no commit SHA/);
    const noRepo = await publishCheckRun(manyFailures(1), { ...opts(log), repository: 'demo' });
    assert.match(noRepo.skipped!, /owner\/repo/);
    assert.equal(api.requests.length, 0);
  });

  it('HTTP 500 is a warning and no throw', async () => {
    api.mode = 'server-error';
    const log = recorder();
    const out = await publishCheckRun(manyFailures(2), opts(log));
    assert.deepEqual(out, {});
    assert.deepEqual(
      log.lines.map((l) => l.level),
      ['warning'],
    );
    assert.match(log.lines[0]!.message, /could not be created \(HTTP 500\)/);
  });

  it('an unreachable API is a warning and no throw', async () => {
    const gone = await startGitHubApiStandin();
    await gone.stop();
    const log = recorder();
    const out = await publishCheckRun(manyFailures(2), { ...opts(log), apiUrl: gone.url });
    assert.deepEqual(out, {});
    assert.deepEqual(
      log.lines.map((l) => l.level),
      ['warning'],
    );
    assert.match(log.lines[0]!.message, /could not be created/);
  });
});

/**
 * Issue 13 item 7: a failed image build that can be debugged from the workflow run. The build's output
 * streams into a log group as mkosi writes it (image layer: ensureImage's line events), and the action's
 * prepare and run modes, run as the runner runs a step (child process, real @actions/core, local artifact
 * services), leave a job summary with the command and the last 50 lines and upload image-build.log.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureImage, ImageBuildFailed } from '../../src/image/ensure-image.ts';
import { LocalImageCache } from '../../src/image/local-cache.ts';
import { renderBuildFailure } from '../../src/action/github/build-failure.ts';
import { hostArch } from '../../src/host/probe.ts';
import { ActionsServices } from '../helpers/actions-services.ts';
import { runStep } from '../helpers/action-step.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEMO = join(ROOT, 'examples/demo');
const tmp = (p: string) => mkdtemp(join(tmpdir(), p));

describe('the build log, line by line as mkosi writes it (ensureImage)', () => {
  it('passes each line on while the build runs, keeps split characters and the last partial line, and the log stays whole', async () => {
    const root = await tmp('itest-follow-');
    const seen = join(root, 'seen');
    // The build waits (up to 10 s, then fails) until the test has been told of its first line.
    const script =
      'echo first; i=0; while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ -e "$1" ] || exit 3; ' +
      "printf 'caf\\303'; sleep 0.3; printf '\\251 ok\\r\\n'; echo 'progress 10%\rprogress 100%'; printf 'no end'; " +
      'echo image > "$5/img.raw"';
    const lines: string[] = [];
    const ends: boolean[] = [];
    const log = join(root, 'image-build.log');
    const victim = join(root, 'victim');
    await writeFile(victim, 'precious\n');
    await symlink(victim, log);
    await ensureImage({
      cache: new LocalImageCache(join(root, 'cache')),
      key: 'k',
      mkosi: ['/bin/sh', '-c', script, 'sh', seen],
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
      onBuildLine: (l) => {
        lines.push(l);
        if (l === 'first') void writeFile(seen, '');
        if (l === 'café ok') throw new Error('a listener that throws loses its line, never the build');
      },
      onBuildEnd: (ok) => ends.push(ok),
    });
    assert.deepEqual(lines, ['first', 'café ok', 'progress 100%', 'no end']);
    assert.deepEqual(ends, [true]);
    assert.equal(
      await readFile(log, 'utf8'),
      'first\ncafé ok\r\nprogress 10%\rprogress 100%\nno end',
      'mkosi wrote the log itself, every byte',
    );
    assert.equal((await lstat(log)).isSymbolicLink(), false);
    assert.equal(await readFile(victim, 'utf8'), 'precious\n', 'never written through a planted link');
  });

  it('a failed build ends with buildEnd(false) and an ImageBuildFailed that carries the command and the last 50 lines', async () => {
    const root = await tmp('itest-failed-');
    const ends: boolean[] = [];
    const err = await ensureImage({
      cache: new LocalImageCache(join(root, 'cache')),
      key: 'k',
      mkosi: ['/bin/sh', '-c', 'i=1; while [ $i -le 70 ]; do echo "line $i"; i=$((i+1)); done; exit 7', 'sh'],
      configDir: '/cfg',
      buildLog: join(root, 'image-build.log'),
      env: process.env,
      onBuildLine: () => {},
      onBuildEnd: (ok) => ends.push(ok),
    }).catch((e: unknown) => e);
    assert.ok(err instanceof ImageBuildFailed, String(err));
    assert.deepEqual(ends, [false]);
    assert.equal(err.code, 7);
    assert.equal(err.exitCode, 4);
    assert.deepEqual(err.argv.slice(-4), ['--output-dir', err.argv.at(-3)!, '--force', 'build']);
    assert.equal(err.lastLines.length, 50);
    assert.deepEqual([err.lastLines[0], err.lastLines.at(-1)], ['line 21', 'line 70']);
    // The message stays what the CLI prints: the command and a 15-line tail.
    assert.match(err.message, /^image build failed \(mkosi exit 7\) after [\d.]+ s: \/bin\/sh -c /);
    assert.match(err.message, /--- last lines of .*image-build\.log ---\nline 56\n[\s\S]*\nline 70$/);
  });
});

describe('the failed-build summary (renderBuildFailure)', () => {
  const failure = {
    argv: ['mkosi', '--directory', '/w/my config', '--force', 'build'],
    log: '/w/out/image-build.log',
    code: 1,
    seconds: 12.5,
    lastLines: ['```', '<img src=x onerror=alert(1)>', '\x1b[31mred\x1b[0m'],
  };

  it('quotes the command for a shell, fences the log lines longer than any backticks in them and drops control characters', () => {
    const md = renderBuildFailure(failure, {
      name: 'itest-logs-image-build-j-x86_64-attempt1',
      files: [],
      id: 3,
    });
    assert.match(md, /^```sh\nmkosi --directory '\/w\/my config' --force build\n```$/m);
    assert.match(md, /^````text\n```\n<img src=x onerror=alert\(1\)>\nred\n````$/m);
    assert.ok(!md.includes('\x1b'));
    assert.match(md, /artifact `itest-logs-image-build-j-x86_64-attempt1`, file `image-build\.log`/);
  });

  it('says where the log is when it was not uploaded, or the upload failed', () => {
    assert.match(
      renderBuildFailure(failure, undefined),
      /Not uploaded \(`upload-logs: none`\): .*`\/w\/out\/image-build\.log`/,
    );
    assert.match(
      renderBuildFailure(failure, { name: 'n', files: [], error: 'HTTP <500>' }),
      /Uploading the log failed \(HTTP &lt;500&gt;\): it stays on the runner/,
    );
  });
});

describe('prepare and run modes with a failing build (child process, real @actions/core, artifact services)', () => {
  const services = new ActionsServices();
  before(() => services.start());
  after(() => services.stop());

  /** A mkosi that knows its version and fails its build after 80 lines, some of them hostile, the last one unended. */
  async function failingMkosi(dir: string): Promise<string> {
    const path = join(dir, 'mkosi');
    await writeFile(
      path,
      [
        '#!/bin/sh',
        'case " $* " in *" --version "*) echo "mkosi 25.3"; exit 0;; esac',
        'i=1; while [ $i -le 80 ]; do echo "build line $i"; i=$((i+1)); done',
        "echo '::error title=forged::injected by the build'",
        "echo '##[group]forged group'",
        "echo '```'",
        "echo '<b>bold</b> | cell'",
        "printf 'E: \\033[31mUnable to locate package nope\\033[0m\\n' >&2",
        "printf 'no newline at the end'",
        'exit 1',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    return path;
  }

  async function step(mode: 'prepare' | 'run', inputs: Record<string, string> = {}) {
    const dir = await tmp('itest-buildfail-');
    const mkosi = await failingMkosi(dir);
    const job = mode === 'prepare' ? 'prepare' : 'itest';
    const r = await runStep({
      argv: ['--import', 'tsx', join(ROOT, 'src/action/main-entry.ts')],
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        ITEST_CACHE_DIR: join(dir, 'cache'),
        RUNNER_TEMP: dir,
        GITHUB_WORKSPACE: ROOT,
        GITHUB_JOB: job,
        GITHUB_RUN_ATTEMPT: '1',
        GITHUB_RUN_ID: '77',
        GITHUB_REPOSITORY: 'systemd/itest-demo',
        GITHUB_SERVER_URL: 'https://github.com',
        GITHUB_EVENT_NAME: 'push',
        GITHUB_REF: 'refs/heads/main',
        ...services.env(),
      },
      inputs: { mode, config: DEMO, mkosi, 'setup-runner': 'false', kvm: 'no', ...inputs },
      prepare: (d) => ({ INPUT_OUTPUT: join(d, 'out') }),
    });
    return { ...r, log: join(r.dir, 'out', 'image-build.log'), job };
  }

  /** The step's log lines, and the checks every failed build's log passes. */
  function checkLog(stdout: string): void {
    const lines = stdout.split('\n');
    const open = lines.indexOf('::group::image build (mkosi output)');
    const close = lines.indexOf('::endgroup::');
    assert.ok(open >= 0 && close > open, `one group around the build:\n${stdout.slice(-3000)}`);
    // The command and the log's path just before it (the group is collapsed).
    assert.match(
      lines[open - 1]!,
      /^image: cache miss for itest-image-\S+; building: \S*\/mkosi --directory \S*examples\/demo --output-dir \S+ --force build \(log: \S+\/image-build\.log\)$/,
    );
    const inside = lines.slice(open + 1, close);
    const built = inside.filter((l) => l.startsWith('build line '));
    assert.deepEqual(
      built,
      Array.from({ length: 80 }, (_, i) => `build line ${i + 1}`),
      'every line, in order, inside the group',
    );
    assert.ok(inside.includes('no newline at the end'), 'the unended last line too');
    // Each line that could be a workflow command sits in a fence of its own, token and all.
    for (const forged of ['::error title=forged::injected by the build', '##[group]forged group']) {
      const at = lines.indexOf(forged);
      assert.ok(at > open && at < close, forged);
      const token = /^::stop-commands::([0-9a-f]{32})$/.exec(lines[at - 1]!)?.[1];
      assert.ok(token, `${forged} is fenced: ${lines[at - 1]}`);
      assert.equal(lines[at + 1], `::${token}::`);
    }
    // The step still fails with the build's own error (once the group is closed).
    const error = lines.findIndex((l) => l.startsWith('::error::image build failed (mkosi exit 1) after '));
    assert.ok(error > close, 'the error follows the group');
  }

  function checkSummary(summary: string): void {
    assert.match(summary, /^## ❌ itest: the image build failed\n/);
    assert.match(summary, /mkosi exited with status 1 after [\d.]+ s\. No test ran\./);
    assert.match(
      summary,
      /^```sh\n\S*\/mkosi --directory \S*examples\/demo --output-dir \S+ --force build\n```$/m,
    );
    const block = /Last 50 line\(s\) of `image-build\.log`:\n\n(`{4,})text\n([\s\S]*?)\n\1\n/.exec(summary);
    assert.ok(block, summary);
    const tail = block[2]!.split('\n');
    assert.equal(tail.length, 50);
    assert.equal(tail[0], 'build line 37');
    assert.deepEqual(tail.slice(-6), [
      '::error title=forged::injected by the build',
      '##[group]forged group',
      '```',
      '<b>bold</b> | cell',
      'E: Unable to locate package nope',
      'no newline at the end',
    ]);
  }

  it('prepare: the build in a log group, the summary with the command and the last 50 lines, image-build.log as an artifact', async () => {
    const calls = services.calls.length;
    const r = await step('prepare');
    assert.equal(r.code, 1, r.stdout.slice(-3000));
    checkLog(r.stdout);
    checkSummary(r.summary);
    const name = `itest-logs-image-build-prepare-${hostArch()}-attempt1`;
    assert.match(
      r.summary,
      new RegExp(
        `📦 The whole log: artifact \`${name}\` \\(\\[download\\]\\(https://github\\.com/systemd/itest-demo/actions/runs/77/artifacts/\\d+\\)\\)`,
      ),
    );
    assert.equal(r.outputs['image-build-failed'], 'true');
    assert.equal(r.outputs['artifact-name'], name);
    assert.ok(!('plan' in r.outputs), 'no plan from a prepare job without an image');
    assert.ok(services.calls.slice(calls).includes('twirp CreateArtifact'));
    // What `gh run download` would get: the whole log, byte for byte.
    const zip = join(r.dir, 'log.zip');
    await writeFile(zip, (await services.artifactBytes(name))!);
    const unzipped = spawnSync('unzip', ['-p', zip, 'image-build.log'], { encoding: 'utf8' });
    assert.equal(unzipped.status, 0, unzipped.stderr);
    assert.equal(unzipped.stdout, await readFile(r.log, 'utf8'));
    assert.match(unzipped.stdout, /^build line 1\n[\s\S]*\nno newline at the end$/);
    // A handled failure: the post step has nothing left to stop or upload.
    assert.match(r.state, /^done<</m);
  });

  it('run with upload-logs none: the same log group and summary, nothing uploaded, the log left on the runner', async () => {
    const calls = services.calls.length;
    const r = await step('run', { 'upload-logs': 'none' });
    assert.equal(r.code, 1, r.stdout.slice(-3000));
    checkLog(r.stdout);
    checkSummary(r.summary);
    assert.match(
      r.summary,
      /Not uploaded \(`upload-logs: none`\): the whole log stays on the runner in `.*\/out\/image-build\.log`\./,
    );
    assert.equal(r.outputs['image-build-failed'], 'true');
    assert.equal(r.outputs['artifact-name'], '');
    assert.ok(!services.calls.slice(calls).includes('twirp CreateArtifact'), 'no artifact');
    assert.ok(existsSync(r.log));
  });
});

/**
 * The bundled action, run the way the runner runs it (`node dist/action/main/index.js` with INPUT_*
 * variables), end to end on the demo under TCG, against local stand-ins of the Actions services:
 * first run builds and saves the image to the (emulated) Actions cache, the second restores it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActionsServices } from '../helpers/actions-services.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const services = new ActionsServices();
before(() => services.start());
after(() => services.stop());

interface ActionRun {
  code: number | null;
  stdout: string;
  summary: string;
  outputs: Record<string, string>;
  state: string;
  out: string;
}

/** Parses the heredoc format @actions/core writes to GITHUB_OUTPUT. */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^([^<\n]+)<<(ghadelimiter_[^\n]+)\n([\s\S]*?)\n\2$/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) out[m[1]!] = m[3]!;
  return out;
}

async function runAction(inputs: Record<string, string>, runnerTemp: string): Promise<ActionRun> {
  const dir = await mkdtemp(join(tmpdir(), 'itest-action-'));
  const files = {
    summary: join(dir, 'summary.md'),
    outputs: join(dir, 'outputs'),
    state: join(dir, 'state'),
  };
  for (const f of Object.values(files)) await writeFile(f, '');
  const out = join(dir, 'results');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...services.env(),
    GITHUB_WORKSPACE: ROOT,
    RUNNER_TEMP: runnerTemp,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_OUTPUT: files.outputs,
    GITHUB_STATE: files.state,
    GITHUB_EVENT_NAME: 'push',
    GITHUB_JOB: 'itest',
    GITHUB_RUN_ID: '77',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_REPOSITORY: 'systemd/itest-action',
    'INPUT_SETUP-RUNNER': 'false',
    INPUT_OUTPUT: out,
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  const r = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const c = spawn(process.execPath, [join(ROOT, 'dist/action/main/index.js')], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.on('close', (code) => resolve({ code, stdout }));
  });
  return {
    ...r,
    summary: await readFile(files.summary, 'utf8'),
    outputs: parseOutputs(await readFile(files.outputs, 'utf8')),
    state: await readFile(files.state, 'utf8'),
    out,
  };
}

describe('the bundled action on the demo (TCG, serial transport, local Actions services)', () => {
  it('first run: cache miss, build, save to the Actions cache, run, report, upload', async () => {
    // RUNNER_TEMP is stable on a runner, and the cache version hashes the image path: keep it, wipe its content.
    const runnerTemp = await mkdtemp(join(tmpdir(), 'itest-runner-temp-'));
    const r = await runAction(
      { config: 'examples/demo', tests: 'TEST-02-SKIP', 'upload-logs': 'all' },
      runnerTemp,
    );
    assert.equal(r.code, 0, r.stdout.slice(-3000));
    assert.equal(r.outputs.ok, 'true');
    assert.equal(r.outputs.skipped, '1');
    assert.equal(r.outputs['cache-hit'], 'false');
    assert.match(r.outputs['cache-key'] ?? '', /^itest-image-x86_64-mkosi/);
    assert.ok(services.calls.includes('twirp FinalizeCacheEntryUpload'), 'the image was saved');
    assert.equal(r.outputs['artifact-name'], 'itest-logs-itest-x86_64-attempt1');
    assert.match(r.summary, /✅ itest: 0 passed · 0 failed · 1 skipped/);
    assert.match(r.summary, /\| image cache \| miss \(built in/);
    assert.match(r.state, /done/);
    assert.ok(existsSync(join(r.out, 'TEST-02-SKIP.journal')));
    // Same key, fresh runner (the emulated cache lives in this process's Azurite, so run one always misses).
    await rm(join(runnerTemp, 'itest-image'), { recursive: true, force: true });
    const again = await runAction({ config: 'examples/demo', tests: 'TEST-02-SKIP' }, runnerTemp);
    assert.equal(again.code, 0, again.stdout.slice(-3000));
    assert.equal(again.outputs['cache-hit'], 'true');
    assert.equal(again.outputs['cache-key'], r.outputs['cache-key']);
    assert.ok(!existsSync(join(again.out, 'image-build.log')), 'nothing was built');
    assert.match(again.summary, /\| image cache \| hit \(restored in/);
  });
});

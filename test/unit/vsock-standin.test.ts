/**
 * The engine's attempt loop on the vsock transport, with a stand-in for mkosi (test/fixtures/fake-mkosi.mjs)
 * because this machine has no /dev/vhost-vsock. Real processes, real journal files, real kill of a process tree.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { executeTest } from '../../src/run/execute-test.ts';
import { standinContext } from '../helpers/standin.ts';
import type { TestSpec } from '../../src/config/test-spec.ts';
import { testSpec, tcgAccelerator } from '../helpers/spec.ts';

const spec = (over: Partial<TestSpec> = {}): TestSpec => testSpec(over);

async function run(
  plan: string,
  over: Partial<TestSpec> = {},
  signal = new AbortController().signal,
  shell = false,
) {
  const out = await mkdtemp(join(tmpdir(), 'itest-standin-'));
  const child = join(out, 'child.pid');
  const { ctx } = await standinContext({
    plan,
    accelerator: tcgAccelerator(),
    out,
    env: { FAKE_MKOSI_CHILD: child },
    signal,
    shell,
  });
  return { result: await executeTest(spec(over), ctx, 0), out, child };
}

/** True once pid has exited (a zombie waiting for its reaper counts as exited); polls up to 3 s. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 30; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (!stat || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('vsock transport with a stand-in mkosi', () => {
  it('exit status 123 from the guest is a pass, with the forwarded journal read back', async () => {
    const { result, out } = await run('exit:123');
    assert.equal(result.status, 'pass');
    assert.equal(result.exitStatus, 123);
    assert.equal(result.files.journal, join(out, 'T.journal'));
    assert.deepEqual(result.outputTail, ['T.service: hello from the fake guest', 'T.service: invocation 1']);
    assert.match(await readFile(result.files.console!, 'utf8'), /fake console: booting T\.service/);
  });

  it('77 is a skip, 1 a fail', async () => {
    assert.equal((await run('exit:77')).result.status, 'skip');
    const f = (await run('exit:1')).result;
    assert.equal(f.status, 'fail');
    assert.equal(f.exitStatus, 1);
  });

  it('mkosi exiting 0 (no status) is an error, retried once, both attempts kept on disk', async () => {
    const { result, out } = await run('exit:0');
    assert.equal(result.status, 'error');
    assert.match(result.reason, /without reporting a test status.*attempt 2 of 2/);
    assert.equal(result.attempts.length, 2);
    assert.equal(result.attempts[0]!.files.console, join(out, 'T.attempt-1.console.log'));
    assert.ok(existsSync(join(out, 'T.attempt-1.console.log')));
    assert.ok(existsSync(join(out, 'T.console.log')));
  });

  it('QEMU killed (247) is retried and the retry can pass; that is not flaky', async () => {
    const { result } = await run('exit:247,exit:123');
    assert.equal(result.status, 'pass');
    assert.deepEqual(
      result.attempts.map((a) => [a.status, a.infra, a.mkosiExit]),
      [
        ['error', true, 247],
        ['pass', false, 123],
      ],
    );
    assert.equal(result.flaky, false);
  });

  it('a test with retries that fails then passes is flaky', async () => {
    const { result } = await run('exit:1,exit:123', { retries: 1 });
    assert.equal(result.status, 'pass');
    assert.equal(result.flaky, true);
  });

  it('a pass that left a coredump fails, unless excluded or allowed', async () => {
    const f = (await run('coredump-exit:123')).result;
    assert.equal(f.status, 'fail');
    assert.match(f.reason, /unexpected coredump: helper\[99\] SIGSEGV/);
    assert.equal(f.digest?.coredumps[0]?.exe, '/usr/lib/helper');
    assert.equal((await run('coredump-exit:123', { coredumpExclude: '^helper$' })).result.status, 'pass');
    assert.equal((await run('coredump-exit:123', { coredumpExclude: '/usr/lib/' })).result.status, 'pass');
    assert.equal((await run('coredump-exit:123', { failOnCoredump: false })).result.status, 'pass');
    assert.equal((await run('coredump-exit:1', { shouldFail: true })).result.status, 'pass');
  });

  it('a journal that journal-remote rotated is noted, not silently cut', async () => {
    const { result } = await run('rotated-exit:123');
    assert.equal(result.status, 'pass');
    assert.match(result.digest?.notes.join(' ') ?? '', /rotated this journal: 1 earlier file.*T\*\.journal/);
  });

  it('a status without a forwarded journal is an error (journal transport lost), never a pass', async () => {
    const { result } = await run('nojournal-exit:123', { infraRetries: 0 });
    assert.equal(result.status, 'error');
    assert.match(result.reason, /journal unusable: no journal file at/);
  });

  it('a timeout kills the whole tree, including a grandchild in its own session', async () => {
    const t0 = performance.now();
    const { result, child } = await run('hang', { timeout: 2 });
    assert.equal(result.status, 'timeout');
    assert.ok(performance.now() - t0 < 15_000);
    const pid = Number(await readFile(child, 'utf8'));
    assert.ok(await gone(pid), `grandchild ${pid} survived`);
  });

  it('a kernel panic on a kernel without pvpanic: the console watch ends the VM at once, not the timeout', async () => {
    const t0 = performance.now();
    const { result } = await run('panic-hang', { timeout: 60 });
    assert.ok(performance.now() - t0 < 15_000, 'ended by the watch, long before the 60 s timeout');
    assert.equal(result.status, 'error');
    assert.equal(
      result.reason,
      'kernel panic: sysrq triggered crash (the console watch ended the VM: the guest kernel has no pvpanic driver)',
    );
    assert.equal(result.attempts.length, 1, 'a panic is no infrastructure failure: not retried');
  });

  it('--shell has no timeout and no retries, and still collects the result', async () => {
    const { result } = await run('slow-exit:123', { timeout: 1 }, undefined, true);
    assert.equal(result.status, 'pass');
    const failed = (await run('slow-exit:0', { timeout: 1 }, undefined, true)).result;
    assert.equal(failed.status, 'error');
    assert.equal(failed.attempts.length, 1, 'no infra retry in --shell');
  });

  it('cancelling stops the VM and records the test as an error', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1000);
    const { result } = await run('hang', { timeout: 60 }, ac.signal);
    assert.equal(result.status, 'error');
    assert.match(result.reason, /cancelled/);
    assert.equal(result.attempts.length, 1);
  });
});

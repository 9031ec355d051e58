/**
 * Issue 12, "Nothing lost, nobody in", items 1, 2, 3 and 6: faults and hostile files against the engine.
 * Real processes throughout: the CLI (and the action's main step) under tsx with the stand-in mkosi
 * (test/fixtures/fake-mkosi.mjs, through test/helpers/mkosi-standin.mjs for the faults it adds), real
 * signals, the real systemd-journal-remote and journalctl, /proc to find what outlived a run.
 *
 *   1. one test's host error (EISDIR, ENOTDIR, EMFILE) is that test's error; the others go on; no VM outlives
 *      the engine, even one that crashes
 *   2. SIGINT, SIGTERM, SIGHUP, any number of them: every VM ends and the partial results are written
 *   3. a journal stream that journal-remote cannot convert is kept beside the console log, with the command
 *   6. nothing is written through a symlink planted in the output directory
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPool } from '../../src/run/pool.ts';
import { executeTest } from '../../src/run/execute-test.ts';
import type { Results } from '../../src/results/model.ts';
import { JOURNAL_REMOTE, standinContext } from '../helpers/standin.ts';
import { testSpec, tcgAccelerator } from '../helpers/spec.ts';
import { makeJournal } from '../helpers/journal.ts';
import {
  DEMO,
  MKOSI_STANDIN,
  ROOT,
  RunTree,
  TSX,
  standinRunArgs,
  vmsIn,
  vmsWithSessions,
} from '../helpers/run-tree.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const made: string[] = [];
const tmp = async (what: string) => {
  const dir = await mkdtemp(join(tmpdir(), `itest-harden-${what}-`));
  made.push(dir);
  return dir;
};
after(() => Promise.all(made.map((d) => rm(d, { recursive: true, force: true }))));

/** standinRunArgs in dir, with o.args after them. */
function itestRun(
  dir: string,
  o: { mkosi?: string; env: NodeJS.ProcessEnv; args?: string[]; timeout?: number },
) {
  return RunTree.start(
    'src/cli/index.ts',
    [...standinRunArgs({ out: join(dir, 'out'), mkosi: o.mkosi, timeout: o.timeout }), ...(o.args ?? [])],
    { cwd: dir, env: { FAKE_MKOSI_STATE: join(dir, 'invocations'), ...o.env } },
  );
}

/**
 * TEST-01-BASIC through the mkosi stand-in whose journal stream is garbage: it fails with the stream kept
 * (the converter cannot read it).
 */
const garbageJournalRun = (dir: string) =>
  itestRun(dir, {
    mkosi: MKOSI_STANDIN,
    env: { FAKE_MKOSI_PLAN: 'exit:0,exit:123', FAKE_MKOSI_SERIAL: '1', STANDIN_JOURNAL: 'garbage' },
    args: ['--test', 'TEST-01-BASIC'],
  });

const readResults = async (out: string) =>
  JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
const byName = (r: Results) => Object.fromEntries(r.tests.map((t) => [t.name, t]));

describe('1. one test that the host fails does not abort the run', () => {
  it("pool: a worker that throws becomes its item's result through recover; the others run to the end", async () => {
    const finished: number[] = [];
    const out = await runPool(
      [1, 2, 3, 4],
      2,
      () => 0,
      async (x) => {
        await sleep(x * 10);
        if (x === 2) throw new Error(`EISDIR on item ${x}`);
        finished.push(x);
        return `ok ${x}`;
      },
      (err, x) => `error ${x}: ${(err as Error).message}`,
    );
    assert.deepEqual(out, ['ok 1', 'error 2: EISDIR on item 2', 'ok 3', 'ok 4']);
    assert.deepEqual(finished.sort(), [1, 3, 4]);
  });

  it('pool without recover: starts nothing new, and rejects only once the running workers have ended', async () => {
    const started: number[] = [];
    let running = 0;
    let runningAtReject = -1;
    await runPool(
      [1, 2, 3],
      2,
      (x) => -x,
      async (x) => {
        started.push(x);
        running++;
        try {
          if (x === 1) throw new Error('boom');
          await sleep(50);
          return x;
        } finally {
          running--;
        }
      },
    ).catch((e: Error) => {
      runningAtReject = running;
      assert.equal(e.message, 'boom');
    });
    assert.equal(runningAtReject, 0, 'item 2 (its VM) had ended before the pool gave up');
    assert.deepEqual(started, [1, 2], 'item 3 never started');
  });

  it("an attempt whose work directory cannot be made (ENOTDIR) is the test's error, with the reason", async () => {
    const { ctx, out } = await standinContext({ plan: 'exit:123', accelerator: tcgAccelerator() });
    await writeFile(join(out, '.work'), 'a file where the work root goes\n');
    const ends: string[] = [];
    ctx.onAttemptStart = (s, n, argv) => ends.push(`start ${s.name} ${n} ${argv.length}`);
    ctx.onAttemptEnd = (s, a, retry) => ends.push(`end ${s.name} ${a.status} ${retry}`);
    const r = await executeTest(testSpec(), ctx, 0);
    assert.equal(r.status, 'error');
    assert.match(r.reason, /^could not run on this host: ENOTDIR: not a directory.*\.work\/T/);
    assert.equal(r.attempts.length, 1, 'a host error is not retried');
    assert.deepEqual(ends, ['start T 1 0', 'end T error false'], 'the front door sees it start and end');
    assert.match(r.digest!.notes[0]!, /no logs were collected: could not run on this host: ENOTDIR/);
  });

  it("an attempt that finds no file descriptor left (EMFILE) is the test's error, with the reason", () => {
    const child = spawnSync(
      'prlimit',
      [
        '--nofile=256:256',
        '--',
        process.execPath,
        '--import',
        TSX,
        join(ROOT, 'test/helpers/emfile-attempt.ts'),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(child.status, 0, child.stderr);
    const { held, result } = JSON.parse(child.stdout) as { held: number; result: Record<string, string> };
    assert.ok(held > 100, `${held} descriptors held`);
    assert.equal(result.threw, undefined, 'the attempt did not throw');
    assert.equal(result.status, 'error');
    assert.match(
      result.reason!,
      /^could not run on this host: EMFILE: too many open files, open '.*\/T\.console\.log'$/,
    );
  });

  it("the CLI: a directory at one test's console log makes it an error; the others run, results.json is written, no VM is left", async () => {
    const dir = await tmp('eisdir');
    const out = join(dir, 'out');
    await mkdir(join(out, 'TEST-02-SKIP.console.log'), { recursive: true });
    // TEST-01's VM runs on until the timeout while TEST-03's ends at once and TEST-02 takes its slot.
    const run = itestRun(dir, {
      env: {
        FAKE_MKOSI_PLAN: 'exit:0,exit:123',
        FAKE_MKOSI_SERIAL: '1',
        FAKE_MKOSI_DURATIONS: JSON.stringify({
          'TEST-01-BASIC.service': 30,
          'TEST-03-EXPECTED-FAIL.service': 0.2,
        }),
        FAKE_MKOSI_BURN: '0',
      },
      timeout: 3,
    });
    try {
      await run.waitFor((tree) => vmsIn(tree).length > 0);
      const sampling = (async () => {
        while (!run.exited) await run.sample().then(() => sleep(100));
      })();
      const end = await run.ended;
      await sampling;
      assert.equal(end.code, 1, `exit 1 (a test failed), not 70:\n${end.stderr}`);
      const t = byName(await readResults(out));
      assert.equal(t['TEST-02-SKIP']!.status, 'error');
      assert.match(
        t['TEST-02-SKIP']!.reason,
        /^could not run on this host: .*EISDIR.*\/out\/TEST-02-SKIP\.console\.log/,
      );
      assert.equal(t['TEST-01-BASIC']!.status, 'timeout', 'the long VM ran on to its timeout');
      assert.equal(t['TEST-03-EXPECTED-FAIL']!.status, 'fail', 'should-fail, and it passed');
      assert.match(end.stdout, /ERR +TEST-02-SKIP .*could not run on this host/);
      assert.deepEqual(await run.survivors(out), [], 'no process of the run outlives it');
    } finally {
      run.killAll();
    }
  });

  it('an engine that dies of an uncaught exception takes its VMs (and their sessions) along', async () => {
    const dir = await tmp('crash');
    const run = RunTree.start('test/helpers/crash-with-vm.ts', [dir], { cwd: dir });
    try {
      // The stand-in VM and the grandchild it puts in a session of its own.
      assert.ok(await run.waitFor((tree) => vmsWithSessions(tree, 1)), 'the VM came up');
      const end = await run.ended;
      assert.match(end.stderr, /a bug in the engine/);
      assert.deepEqual(await run.survivors(dir), []);
    } finally {
      run.killAll();
    }
  });
});

// Concurrently: each waits out a grace period, and each looks only at its own process tree and directory.
describe('2. signals stop the run, never the process', { concurrency: true }, () => {
  it('SIGHUP (the terminal went away): every VM and its session ends, the partial results are written, exit 130', async () => {
    const dir = await tmp('hup');
    const out = join(dir, 'out');
    const run = itestRun(dir, { env: { FAKE_MKOSI_PLAN: 'exit:0,hang' } });
    try {
      // Two VMs, each with its grandchild in a session of its own.
      assert.ok(await run.waitFor((tree) => vmsWithSessions(tree, 2)), 'VMs up');
      run.child.kill('SIGHUP');
      const end = await run.ended;
      assert.equal(end.code, 130, `cancelled, as the README says:\n${end.stderr}`);
      assert.match(end.stderr, /SIGHUP: stopping the VMs/);
      const t = byName(await readResults(out));
      assert.match(t['TEST-01-BASIC']!.reason, /^cancelled by SIGHUP \(console kept/);
      assert.match(t['TEST-03-EXPECTED-FAIL']!.reason, /^cancelled by SIGHUP \(console kept/);
      assert.equal(t['TEST-02-SKIP']!.reason, 'cancelled by SIGHUP before it started');
      assert.deepEqual(await run.survivors(out), []);
    } finally {
      run.killAll();
    }
  });

  /**
   * The stand-in mkosi ignores SIGTERM (stuck shutting QEMU down), so killTree waits out its grace period
   * before SIGKILL: every further signal lands inside it.
   */
  async function signalsDuringGrace(run: RunTree, out: string, vms: number) {
    assert.ok(await run.waitFor((tree) => vmsWithSessions(tree, vms)), 'VMs up');
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGINT', 'SIGTERM'] as const) {
      run.child.kill(sig);
      await sleep(300);
      await run.sample();
    }
    const end = await run.ended;
    assert.equal(end.signal, null, 'no signal killed the process');
    assert.ok(existsSync(join(out, 'results.json')), 'the partial results are written');
    assert.deepEqual(await run.survivors(out), [], 'SIGKILL after the grace period ended every VM');
    return { end, results: await readResults(out) };
  }

  it("the CLI: SIGINT, then SIGTERM, SIGHUP, SIGINT, SIGTERM inside killTree's grace period", async () => {
    const dir = await tmp('signals');
    const out = join(dir, 'out');
    const run = itestRun(dir, {
      mkosi: MKOSI_STANDIN,
      env: { FAKE_MKOSI_PLAN: 'exit:0,hang', STANDIN_IGNORE_TERM: '1' },
    });
    try {
      const { end, results } = await signalsDuringGrace(run, out, 2);
      assert.equal(end.code, 130);
      assert.equal((end.stderr.match(/still stopping the VMs/g) ?? []).length, 4, end.stderr);
      assert.deepEqual(
        results.tests.map((t) => t.reason.replace(/ \(.*/, '')),
        ['cancelled by SIGINT', 'cancelled by SIGINT', 'cancelled by SIGINT before it started'],
      );
    } finally {
      run.killAll();
    }
  });

  it("the action's run mode, through the same handlers", async () => {
    const dir = await tmp('action');
    const out = join(dir, 'out');
    for (const f of ['state', 'output', 'summary.md']) await writeFile(join(dir, f), '');
    const action = RunTree.start('src/action/main-entry.ts', [], {
      cwd: dir,
      // The environment a runner gives the step: none of the test runner's own GITHUB_* and such.
      base: Object.fromEntries(
        Object.entries(process.env).filter(([k]) => !/^(STATE_|INPUT_|GITHUB_|ACTIONS_|RUNNER_)/.test(k)),
      ),
      env: {
        INPUT_CONFIG: DEMO,
        INPUT_MKOSI: MKOSI_STANDIN,
        'INPUT_SETUP-RUNNER': 'false',
        INPUT_CACHE: 'false',
        INPUT_OUTPUT: out,
        INPUT_JOBS: '1',
        INPUT_KVM: 'no',
        INPUT_TRANSPORT: 'serial',
        'INPUT_UPLOAD-LOGS': 'none',
        GITHUB_JOB: 'itest',
        GITHUB_RUN_ATTEMPT: '1',
        GITHUB_WORKSPACE: dir,
        RUNNER_TEMP: dir,
        GITHUB_STATE: join(dir, 'state'),
        GITHUB_OUTPUT: join(dir, 'output'),
        GITHUB_STEP_SUMMARY: join(dir, 'summary.md'),
        FAKE_MKOSI_PLAN: 'exit:0,hang',
        FAKE_MKOSI_STATE: join(dir, 'invocations'),
        STANDIN_IGNORE_TERM: '1',
      },
    });
    try {
      const { end, results } = await signalsDuringGrace(action, out, 1);
      assert.match(end.stdout, /SIGINT: stopping the VMs/);
      assert.equal(results.summary.error, 3);
      assert.match(await readFile(join(dir, 'summary.md'), 'utf8'), /cancelled by SIGINT/);
    } finally {
      action.killAll();
    }
  });
});

describe('3. a journal stream that cannot be converted is kept beside the console log', () => {
  /** executeTest on the serial transport with the stand-in mkosi; env adds to its FAKE_MKOSI_* setup. */
  async function serialRun(env: NodeJS.ProcessEnv, journalRemote?: string) {
    const { ctx, out } = await standinContext({
      plan: 'exit:123',
      accelerator: tcgAccelerator(),
      env: { FAKE_MKOSI_SERIAL: '1', ...env },
    });
    ctx.base = { ...ctx.base, mkosi: [MKOSI_STANDIN], transport: 'serial' };
    if (journalRemote) ctx.attemptEnv = { ...ctx.attemptEnv, journalRemote };
    return { result: await executeTest(testSpec(), ctx, 0), out };
  }

  it("noise on the serial port (0 entries): each attempt's stream survives the retry, and the reason says so", async () => {
    const { result, out } = await serialRun({ STANDIN_JOURNAL: 'garbage' });
    assert.equal(result.status, 'error');
    assert.match(
      result.reason,
      /systemd-journal-remote wrote no journal entries from the 4096-byte export stream/,
    );
    assert.equal(result.attempts.length, 2, 'an unusable journal is retried once');
    for (const kept of ['T.attempt-1.journal.export', 'T.journal.export']) {
      const bytes = await readFile(join(out, kept));
      assert.equal(bytes.length, 4096, `${kept} holds the stream as it arrived`);
      assert.equal(bytes[255], 255);
    }
    const note = result.digest!.notes.find((n) => n.includes('is kept in'));
    assert.equal(
      note,
      `the raw journal stream (4096 bytes, the journal's only copy) is kept in ${join(out, 'T.journal.export')}; ` +
        `convert it by hand: ${JOURNAL_REMOTE} -o ${join(out, 'T.journal')} ${join(out, 'T.journal.export')}`,
    );
  });

  it('journal-remote failing (exit 1) on a good stream: the kept stream converts by hand with the command of the note', async () => {
    const { result, out } = await serialRun({}, '/bin/false');
    assert.equal(result.status, 'error');
    assert.match(result.reason, /journal unusable: systemd-journal-remote failed \(exit 1\)/);
    const note = result.digest!.notes.find((n) => n.includes('convert it by hand: '));
    assert.ok(note, `a note gives the command: ${result.digest!.notes.join(' | ')}`);
    const argv = note.slice(note.indexOf('convert it by hand: ') + 20).split(' ');
    assert.deepEqual(argv, ['/bin/false', '-o', join(out, 'T.journal'), join(out, 'T.journal.export')]);
    // The same command with this host's working journal-remote in place of the broken one.
    execFileSync(JOURNAL_REMOTE, argv.slice(1), { stdio: 'ignore' });
    const header = execFileSync('journalctl', ['--file', argv[2]!, '--header'], { encoding: 'utf8' });
    assert.match(header, /^Entry objects: 2$/m);
  });

  it("the CLI: the kept streams outlive the run's cleanup of .work, and the report gives the command", async () => {
    const dir = await tmp('keep');
    const out = join(dir, 'out');
    const run = garbageJournalRun(dir);
    try {
      const end = await run.ended;
      assert.equal(end.code, 1, end.stderr);
      assert.equal(existsSync(join(out, '.work')), false, 'the work root is cleaned up');
      for (const f of ['TEST-01-BASIC.attempt-1.journal.export', 'TEST-01-BASIC.journal.export'])
        assert.equal(lstatSync(join(out, f)).size, 4096, f);
      const kept = join(out, 'TEST-01-BASIC.journal.export');
      assert.ok(
        end.stdout.includes(
          `convert it by hand: ${JOURNAL_REMOTE} -o ${join(out, 'TEST-01-BASIC.journal')} ${kept}`,
        ),
        end.stdout,
      );
    } finally {
      run.killAll();
    }
  });
});

describe('6. nothing is written through a symlink planted in the output directory', () => {
  it('the CLI: results.json, junit.xml, console logs, kept streams, attempt names and .work', async () => {
    const dir = await tmp('symlinks');
    const out = join(dir, 'out');
    const victim = join(dir, 'victim');
    await mkdir(join(victim, 'work', 'TEST-01-BASIC'), { recursive: true });
    await writeFile(join(victim, 'work', 'TEST-01-BASIC', 'precious'), 'precious\n');
    await mkdir(out);
    const planted = [
      'results.json',
      'junit.xml',
      'TEST-01-BASIC.console.log',
      'TEST-01-BASIC.journal',
      'TEST-01-BASIC.journal.export',
      'TEST-01-BASIC.attempt-1.console.log',
      'TEST-01-BASIC.attempt-1.journal',
      'TEST-01-BASIC.attempt-1.journal.export',
    ];
    for (const f of planted) {
      await writeFile(join(victim, f), `victim ${f}\n`);
      await symlink(join(victim, f), join(out, f));
    }
    await symlink(join(victim, 'work'), join(out, '.work'));
    const run = garbageJournalRun(dir);
    try {
      const end = await run.ended;
      assert.equal(end.code, 1, end.stderr);
      for (const f of planted) {
        assert.equal(await readFile(join(victim, f), 'utf8'), `victim ${f}\n`, `${f} written through`);
        assert.ok(lstatSync(join(out, f)).isFile(), `${f} is a file of the run's own`);
      }
      assert.equal(await readFile(join(victim, 'work', 'TEST-01-BASIC', 'precious'), 'utf8'), 'precious\n');
      assert.equal((await readResults(out)).tests[0]!.attempts.length, 2);
    } finally {
      run.killAll();
    }
  });

  it("vsock: mkosi's journal-remote does not append to a journal that a planted symlink points at", async () => {
    const elsewhere = await makeJournal([{ MESSAGE: "not the guest's", _SYSTEMD_UNIT: 'host.service' }]);
    const { ctx, out } = await standinContext({ plan: 'exit:123', accelerator: tcgAccelerator() });
    await symlink(elsewhere, join(out, 'T.journal'));
    const result = await executeTest(testSpec(), ctx, 0);
    assert.equal(result.status, 'pass');
    const entries = (file: string) =>
      execFileSync('journalctl', ['--file', file, '--header'], { encoding: 'utf8' }).match(
        /^Entry objects: (\d+)$/m,
      )?.[1];
    assert.equal(entries(elsewhere), '1', 'the journal elsewhere is untouched');
    assert.ok(lstatSync(join(out, 'T.journal')).isFile());
    assert.equal(entries(join(out, 'T.journal')), '2');
  });
});

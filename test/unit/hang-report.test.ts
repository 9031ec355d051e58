/**
 * The hang report of a timed-out test, on real journals of real hanging VMs (test/fixtures/hang/README.md):
 * the digest reads them through the real systemd-journal-remote and journalctl, the findings say what
 * the test unit was doing at the kill, and the task dump's screen of scheduler statistics stays out.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { digestJournal } from '../../src/digest/read-journal.ts';
import { DigestBuilder, DEFAULT_LIMITS, type Entry } from '../../src/digest/builder.ts';
import { findings, type Finding } from '../../src/results/findings.ts';
import type { JournalDigest } from '../../src/digest/model.ts';
import { JOURNAL_REMOTE } from '../helpers/journal.ts';
import { assertValidResults, results, testResult } from '../helpers/results.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/hang');
const UNIT = 'itest-hang-tree.service';

async function fixture(name: string): Promise<Record<string, string>[]> {
  const raw = await readFile(join(FIXTURES, name));
  const text = name.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, string>);
}

/** The entries as a real journal file, with the guest's own monotonic times (the digest's "since boot"). */
async function journalOf(entries: Record<string, string>[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'itest-hang-'));
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    const mono = e.__MONOTONIC_TIMESTAMP ?? String(i);
    parts.push(
      Buffer.from(
        `__CURSOR=s=1;i=${i + 1}\n__REALTIME_TIMESTAMP=${1796128000000000 + Number(mono)}\n` +
          `__MONOTONIC_TIMESTAMP=${mono}\n_BOOT_ID=8c0fcead812b476cb1ed9190b1001106\n`,
      ),
    );
    for (const [k, v] of Object.entries(e)) {
      if (k.startsWith('__')) continue;
      if (!v.includes('\n')) parts.push(Buffer.from(`${k}=${v}\n`));
      else {
        const size = Buffer.alloc(8);
        size.writeBigUInt64LE(BigInt(Buffer.byteLength(v)));
        parts.push(Buffer.from(`${k}\n`), size, Buffer.from(`${v}\n`));
      }
    }
    parts.push(Buffer.from('\n'));
  });
  await writeFile(join(dir, 'in.export'), Buffer.concat(parts));
  const out = join(dir, 'itest-hang-tree.journal');
  execFileSync(JOURNAL_REMOTE, ['-o', out, join(dir, 'in.export')], { stdio: 'ignore' });
  return out;
}

function timedOut(digest: JournalDigest, journal: string) {
  return testResult('itest-hang-tree', 'timeout', {
    unit: UNIT,
    digest,
    outputTail: digest.unitOutput,
    files: { journal, console: '/out/itest-hang-tree.console.log' },
  });
}

const byTitle = (fs: Finding[], re: RegExp) => fs.find((f) => re.test(f.title));
const text = (fs: Finding[]) => fs.flatMap((f) => [f.title, ...f.lines]).join('\n');
/** Lines of the task dump's scheduler statistics and workqueue report (kernel/sched/debug.c, workqueue.c). */
const SCHED_STATS =
  /Sched Debug Version|\.nr_running|runnable tasks:|Showing busy workqueues| S +sleep +461 /;

describe('hang report (a real timed-out VM: sh waits on a child sleep)', async () => {
  const entries = await fixture('journal.jsonl.gz');
  const journal = await journalOf(entries);
  const digest = await digestJournal({ journalctl: 'journalctl', file: journal, unit: UNIT });
  const t = timedOut(digest, journal);
  const found = findings(t);

  it('names the stuck command and its kernel stack, under the shell that started it (ppid chain)', () => {
    const sleep = byTitle(found, /^stuck: sleep\[461\]/);
    assert.ok(sleep, text(found));
    assert.equal(sleep.title, 'stuck: sleep[461] state S (sleeping), parent 460');
    assert.deepEqual(sleep.lines, [
      '__schedule+0x4ea/0xbe0',
      'schedule+0x27/0xc0',
      '__do_sys_pause+0x27/0x50',
      'do_syscall_64+0x87/0x180',
      'entry_SYSCALL_64_after_hwframe+0x76/0x7e',
    ]);
    // The shell wrote the unit's lines (its _PID); the sleep never logged and is found through its ppid.
    const sh = byTitle(found, /^stuck: sh\[460\]/);
    assert.ok(sh, text(found));
    assert.ok(
      sh.lines.some((l) => l.startsWith('__x64_sys_rt_sigsuspend+')),
      sh.lines.join('\n'),
    );
    assert.equal(digest.taskDump?.unitTasks.length, 2, 'no other task of the 94 is taken for the unit');
    assert.ok(!sh.lines.some((l) => l.startsWith('?')), 'unreliable "?" frames left out');
    assertValidResults(results([t]));
  });

  it("gives the unit's last lines, its start (since boot, before the kill) and its state at the kill", () => {
    assert.deepEqual(byTitle(found, /^last lines of the unit$/)?.lines, [
      'itest-hang-tree: waiting on a child that never ends',
      'child 461',
    ]);
    const hang = byTitle(found, /^hang: itest-hang-tree\.service$/);
    assert.ok(hang, text(found));
    assert.equal(
      hang.lines[0],
      'started 187.2 s after boot, 105.4 s before the task dump taken just before the kill',
    );
    assert.equal(hang.lines[1], 'state at the kill: activating (start job running)');
    assert.equal(found.indexOf(hang), 1, 'right after the unit lines');
  });

  it('leaves the whole dump in the journal and gives the command that shows exactly it', () => {
    const hang = byTitle(found, /^hang: /)!;
    const cmd = hang.lines.find((l) => l.includes('journalctl'));
    assert.match(cmd ?? '', /^whole task dump \(94 tasks, then scheduler statistics\): journalctl --file /);
    const argv = cmd!.slice(cmd!.indexOf('journalctl')).split(' ');
    assert.deepEqual(argv.slice(1, 3), ['--file', journal]);
    const shown = execFileSync(argv[0]!, [...argv.slice(1), '--no-pager'], { encoding: 'utf8' })
      .trim()
      .split('\n');
    assert.match(shown[0]!, /kernel: sysrq: Show State$/);
    assert.match(shown.at(-1)!, /kernel: Showing busy workqueues and worker pools:$/);
    assert.ok(shown.some((l) => /task:sleep +state:S .*pid:461 .*ppid:460 /.test(l)));
  });

  it('shows none of the scheduler statistics or other tasks, and the journal lines from before the dump', () => {
    // The journal ends in the dump's statistics: the last lines of the journal used to be those.
    const tail = entries.slice(-DEFAULT_LIMITS.lastLines).map((e) => e.MESSAGE ?? '');
    assert.ok(
      tail.filter((l) => SCHED_STATS.test(l) || /^\s+[SIRD] +\S/.test(l)).length > 20,
      tail.join('\n'),
    );
    assert.ok(
      tail.every((l, i) => entries.at(i - tail.length)?._TRANSPORT === 'kernel' || !l),
      'all kernel lines',
    );
    assert.ok(!SCHED_STATS.test(text(found)), text(found));
    assert.ok(!/task:|kworker|psimon|jbd2/.test(text(found)), 'other tasks of the dump left out');
    // The journal's last lines are now those before the dump: what the guest did up to the hang.
    const dumpAt = entries.findIndex((e) => e.MESSAGE === 'sysrq: Show State');
    const before = entries
      .slice(0, dumpAt)
      .slice(-DEFAULT_LIMITS.lastLines)
      .map((e) => `${e.SYSLOG_IDENTIFIER}: ${e.MESSAGE}`);
    assert.deepEqual(byTitle(found, /^last lines of the journal$/)?.lines, before);
    assert.equal(before.at(-1), 'sh: child 461');
  });
});

describe('hang report (a real VM that timed out while still booting)', async () => {
  const journal = await journalOf(await fixture('boot-slow.jsonl'));
  const digest = await digestJournal({ journalctl: 'journalctl', file: journal, unit: UNIT });
  const found = findings(timedOut(digest, journal));

  it('says the unit never started and that the journal holds no dump; the journal lines stay', () => {
    assert.deepEqual(byTitle(found, /^hang: /)?.lines, [
      'the journal shows no start job for it: the boot never got to it',
      'no task dump in the journal: it ends before the kill (the console log may show one)',
    ]);
    assert.equal(byTitle(found, /^last lines of the journal$/)?.lines.length, DEFAULT_LIMITS.lastLines);
  });
});

describe('hang report (synthetic: what the real runs did not show)', () => {
  const kernel = (msg: string, us: number): Entry => ({
    _TRANSPORT: 'kernel',
    SYSLOG_IDENTIFIER: 'kernel',
    MESSAGE: msg,
    _SOURCE_MONOTONIC_TIMESTAMP: String(us),
  });
  const task = (comm: string, state: string, pid: number, ppid: number) =>
    `task:${comm.padEnd(15)} state:${state} stack:0     pid:${pid}   tgid:${pid}   ppid:${ppid}      flags:0x00000000`;

  it('keeps the last dump, bounds what it keeps, and takes blocked tasks outside the unit', () => {
    const b = new DigestBuilder(UNIT, { ...DEFAULT_LIMITS, dumpUnitTasks: 2, dumpFrames: 2 });
    b.add({ _SYSTEMD_UNIT: UNIT, _PID: '50', MESSAGE: 'go', __MONOTONIC_TIMESTAMP: '1000000' });
    b.add(kernel('sysrq: Show State', 2_000_000)); // the test's own dump, replaced by the last one
    b.add(kernel(task('old', 'S', 50, 1), 2_000_100));
    b.add(kernel('sysrq: Show State', 9_000_000));
    b.add(kernel(task('worker', 'S', 50, 1), 9_000_100));
    for (const f of ['a+0x1/0x2', '? b+0x1/0x2', 'c+0x1/0x2 [ext4]', 'd+0x1/0x2'])
      b.add(kernel(` ${f}`, 9_000_200));
    for (const pid of [51, 52, 53]) b.add(kernel(task('child', 'D', pid, 50), 9_000_300));
    b.add(kernel(task('jbd2/sda-8', 'D', 300, 2), 9_000_400));
    b.add(kernel(task('kworker/0:1', 'I', 301, 2), 9_000_500));
    // Seconds later: no longer the dump, a line of its own.
    b.add(kernel('EXT4-fs (sda): mounted filesystem', 15_000_000));
    const d = b.finish();
    assert.equal(d.taskDump?.at, 9);
    assert.equal(d.taskDump?.tasks, 6);
    assert.deepEqual(
      d.taskDump?.unitTasks.map((x) => [x.comm, x.pid, x.stack]),
      [
        ['worker', 50, ['a+0x1/0x2', 'c+0x1/0x2 [ext4]']],
        ['child', 51, []],
      ],
    );
    assert.equal(d.taskDump?.unitTasksOmitted, 2);
    assert.deepEqual(
      d.taskDump?.blocked.map((x) => x.comm),
      ['jbd2/sda-8'],
    );
    assert.equal(d.taskDump?.kernelLines, 12);
    assert.deepEqual(d.lastLines.slice(-2), [`${UNIT}: go`, 'kernel: EXT4-fs (sda): mounted filesystem']);
  });

  it("follows the unit's state: started, a oneshot's Finished, stopping, failed with its result", () => {
    // The message IDs of systemd's sd-messages.h, as PID 1 logs them with UNIT=.
    const b = new DigestBuilder(UNIT);
    const pid1 = (id: string, msg: string, us: number): Entry => ({
      _SYSTEMD_UNIT: 'init.scope',
      UNIT,
      MESSAGE_ID: id,
      MESSAGE: msg,
      __MONOTONIC_TIMESTAMP: String(us),
    });
    b.add(pid1('7d4958e842da4a758f6c1cdc7b36dcc5', `Starting ${UNIT}...`, 5_000_000));
    assert.deepEqual(b.finish().unitLife, {
      startedAt: 5,
      state: 'activating (start job running)',
      since: 5,
    });
    b.add(pid1('39f53479d3a045ac8e11786248231fbf', `Finished ${UNIT}.`, 6_500_000));
    assert.equal(b.finish().unitLife?.state, 'finished (its command ended)');
    b.add(pid1('de5b426a63be47a7b6ac3eaac82e2f6f', `Stopping ${UNIT}...`, 7_000_000));
    assert.deepEqual(b.finish().unitLife, {
      startedAt: 5,
      state: 'deactivating (stop job running)',
      since: 7,
    });
    b.add({
      ...pid1('d9b373ed55a64feb8242e02dbe79a49c', `${UNIT}: Failed with result 'timeout'.`, 8_000_000),
      UNIT_RESULT: 'timeout',
    });
    b.add(pid1('be02cf6855d2428ba40df7e9d022f03d', `Failed to start ${UNIT}.`, 8_000_100));
    assert.equal(b.finish().unitLife?.state, 'failed (timeout)');
  });
});

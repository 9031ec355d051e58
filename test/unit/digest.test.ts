/** The journal digest on real journal files written by the real systemd-journal-remote. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { open, stat, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestJournal } from '../../src/digest/read-journal.ts';
import { MESSAGE_IDS } from '../../src/digest/builder.ts';
import { makeJournal } from '../helpers/journal.ts';

const UNIT = 'TEST-05-CRASH.service';
const out = (msg: string) => ({
  _SYSTEMD_UNIT: UNIT,
  SYSLOG_IDENTIFIER: 'test.sh',
  PRIORITY: '6',
  MESSAGE: msg,
});
const pid1 = (msg: string, extra: Record<string, string> = {}) => ({
  _SYSTEMD_UNIT: 'init.scope',
  SYSLOG_IDENTIFIER: 'systemd',
  PRIORITY: '6',
  MESSAGE: msg,
  ...extra,
});
const kernel = (msg: string, prio = '4') => ({
  _TRANSPORT: 'kernel',
  SYSLOG_IDENTIFIER: 'kernel',
  PRIORITY: prio,
  MESSAGE: msg,
});

const digest = (file: string, consoleTail?: string[]) =>
  digestJournal({ journalctl: 'journalctl', file, unit: UNIT, ...(consoleTail ? { consoleTail } : {}) });

describe('journal digest', () => {
  it('collects the unit output, failed units, errors, boot phases and the last lines', async () => {
    const file = await makeJournal([
      pid1(
        'Startup finished in 9.785s (kernel) + 28.013s (initrd) + 1min 1.482s (userspace) = 1min 39.280s.',
        { MESSAGE_ID: MESSAGE_IDS.startupFinished },
      ),
      out('step 1 ok'),
      out('step 2: assertion failed: expected 3, got 4'),
      {
        _SYSTEMD_UNIT: 'foo.service',
        SYSLOG_IDENTIFIER: 'foo',
        PRIORITY: '3',
        MESSAGE: 'foo: cannot open /etc/foo.conf',
      },
      pid1(`${UNIT}: Failed with result 'exit-code'.`, {
        UNIT,
        MESSAGE_ID: MESSAGE_IDS.unitFailureResult,
        UNIT_RESULT: 'exit-code',
        PRIORITY: '4',
      }),
      pid1('Failed to start bar.service - Bar.', {
        UNIT: 'bar.service',
        MESSAGE_ID: MESSAGE_IDS.unitFailed,
        PRIORITY: '3',
      }),
    ]);
    const d = await digest(file);
    assert.equal(d.entries, 6);
    assert.deepEqual(d.unitOutput, ['step 1 ok', 'step 2: assertion failed: expected 3, got 4']);
    assert.deepEqual(d.failedUnits, [
      { unit: UNIT, result: 'exit-code' },
      { unit: 'bar.service', result: 'failed' },
    ]);
    assert.deepEqual(
      d.errors.map((e) => e.message),
      ['foo: cannot open /etc/foo.conf', 'Failed to start bar.service - Bar.'],
    );
    assert.deepEqual(d.boot, { kernel: 9.8, initrd: 28, userspace: 61.5 });
    assert.equal(d.lastLines.at(-1), 'systemd: Failed to start bar.service - Bar.');
    assert.deepEqual(d.notes, []);
  });

  it('finds coredumps from the coredump service, and crashes where the service did not run', async () => {
    const file = await makeJournal([
      {
        SYSLOG_IDENTIFIER: 'systemd-coredump',
        PRIORITY: '2',
        MESSAGE_ID: MESSAGE_IDS.coredump,
        MESSAGE: 'Process 412 (crasher) of user 0 dumped core.',
        COREDUMP_PID: '412',
        COREDUMP_COMM: 'crasher',
        COREDUMP_EXE: '/usr/bin/crasher',
        COREDUMP_SIGNAL_NAME: 'SIGSEGV',
        COREDUMP_UNIT: UNIT,
      },
      {
        SYSLOG_IDENTIFIER: 'systemd-coredump',
        PRIORITY: '2',
        MESSAGE: 'Process 500 (other) terminated abnormally with signal 6/ABRT, processing...',
      },
      {
        SYSLOG_IDENTIFIER: 'systemd-coredump',
        PRIORITY: '3',
        MESSAGE: 'Failed to connect to coredump service: No such file or directory',
      },
      pid1('x.service: Main process exited, code=dumped, status=11/SEGV', { UNIT: 'x.service' }),
    ]);
    const d = await digest(file);
    assert.deepEqual(d.coredumps, [
      {
        pid: 412,
        comm: 'crasher',
        signal: 'SIGSEGV',
        exe: '/usr/bin/crasher',
        unit: UNIT,
        source: 'coredump',
      },
      { pid: 500, comm: 'other', signal: 'SIGABRT', source: 'crash-line' },
      { pid: null, comm: 'x.service', signal: 'SIGSEGV', unit: 'x.service', source: 'crash-line' },
    ]);
  });

  it('recognises sanitizer reports, kernel oopses and panics, emergency mode and subtests', async () => {
    const file = await makeJournal([
      out('==1234==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010'),
      out('src/foo.c:12:5: runtime error: signed integer overflow: 2147483647 + 1'),
      out('SUMMARY: AddressSanitizer: heap-use-after-free src/foo.c:12 in main'),
      kernel('BUG: kernel NULL pointer dereference, address: 0000000000000000', '1'),
      kernel('WARNING: CPU: 0 PID: 1 at fs/foo.c:10 foo+0x1/0x2'),
      kernel('usb 1-1: new device', '6'),
      pid1('Started emergency.service - Emergency Shell.'),
      { ...out('subtest a passed'), MESSAGE_ID: MESSAGE_IDS.subtest, SUBTEST: 'a', SUBTEST_RESULT: 'pass' },
      {
        ...out('subtest b failed:\nmulti-line detail'),
        MESSAGE_ID: MESSAGE_IDS.subtest,
        SUBTEST: 'b',
        SUBTEST_RESULT: 'fail',
      },
    ]);
    const d = await digest(file, ['[  3.1] Kernel panic - not syncing: Attempted to kill init!']);
    assert.equal(d.sanitizers.length, 3);
    assert.match(d.sanitizers[0]!, /AddressSanitizer: heap-use-after-free/);
    assert.deepEqual(d.kernel, [
      'BUG: kernel NULL pointer dereference, address: 0000000000000000',
      'WARNING: CPU: 0 PID: 1 at fs/foo.c:10 foo+0x1/0x2',
      '[  3.1] Kernel panic - not syncing: Attempted to kill init!',
    ]);
    assert.equal(d.emergency, true);
    assert.deepEqual(d.subtests, [
      { name: 'a', result: 'pass', message: 'subtest a passed' },
      { name: 'b', result: 'fail', message: 'subtest b failed:\nmulti-line detail' },
    ]);
  });

  it('stays bounded on a long journal', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => out(`line ${i}`));
    const d = await digest(await makeJournal(many));
    assert.equal(d.entries, 3000);
    assert.equal(d.unitOutput.length, 30);
    assert.equal(d.unitOutput.at(-1), 'line 2999');
    assert.equal(d.lastLines.length, 30);
  });

  it('a truncated journal gives a partial digest and a note, never a crash', async () => {
    const file = await makeJournal(
      Array.from({ length: 2000 }, (_, i) => out(`line ${i} ${'x'.repeat(200)}`)),
    );
    const size = (await stat(file)).size;
    const fh = await open(file, 'r+');
    await fh.truncate(Math.floor(size / 2));
    await fh.close();
    const d = await digest(file);
    assert.ok(d.entries < 2000, `read ${d.entries} entries of a half journal`);
    assert.ok(d.notes.length > 0 || d.entries === 0, 'the damage is noted');
  });

  it('garbage and missing files give an empty digest with a note', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-garbage-'));
    const junk = join(dir, 'junk.journal');
    await writeFile(junk, 'this is not a journal file at all\n'.repeat(100));
    const d = await digest(junk);
    assert.equal(d.entries, 0);
    assert.match(d.notes.join(' '), /journalctl exited/);
    const missing = await digest(join(dir, 'missing.journal'));
    assert.equal(missing.entries, 0);
    assert.ok(missing.notes.length > 0);
  });
});

describe('journal digest and task dumps', () => {
  it('a SysRq-T task dump is not mistaken for a kernel failure', async () => {
    const file = await makeJournal([
      kernel('sysrq: Show State', '6'),
      kernel(
        'task:systemd         state:S stack:0     pid:1     tgid:1     ppid:0      flags:0x00000002',
        '6',
      ),
      kernel('Call Trace:', '6'),
      kernel(' <TASK>', '6'),
      kernel('INFO: task foo:42 blocked for more than 120 seconds.', '3'),
    ]);
    const d = await digest(file);
    assert.deepEqual(d.kernel, ['INFO: task foo:42 blocked for more than 120 seconds.']);
  });
});

describe('journals from a newer systemd', () => {
  it('an unknown incompatible header flag is explained, not a crash', async () => {
    const file = await makeJournal([out('hello')]);
    // Header: signature (8 bytes), compatible_flags (u32), incompatible_flags (u32, little endian) at 12.
    const fh = await open(file, 'r+');
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, 12);
    buf.writeUInt32LE(buf.readUInt32LE(0) | (1 << 20));
    await fh.write(buf, 0, 4, 12);
    await fh.close();
    const d = await digest(file);
    assert.equal(d.entries, 0);
    assert.match(d.notes.join(' '), /newer systemd.*mkosi journalctl/);
    const { checkJournal } = await import('../../src/run/journal.ts');
    const c = await checkJournal('journalctl', file);
    assert.equal(c.entries, 0);
    assert.match(c.error ?? '', /written by a newer systemd/);
  });
});

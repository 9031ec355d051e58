/**
 * Streams a journal file through `journalctl -o json` into a DigestBuilder: one entry in memory at a
 * time, whatever the journal's size. A truncated or corrupted journal gives a partial digest and a note.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { DigestBuilder, DEFAULT_LIMITS, type DigestLimits, type Entry } from './builder.ts';
import type { JournalDigest } from './model.ts';

/** Only the fields the digest reads: journalctl then formats and we parse far less. */
export const DIGEST_FIELDS = [
  'MESSAGE',
  'PRIORITY',
  'MESSAGE_ID',
  '_SYSTEMD_UNIT',
  'UNIT',
  'USER_UNIT',
  'SYSLOG_IDENTIFIER',
  '_TRANSPORT',
  'UNIT_RESULT',
  'COREDUMP_PID',
  'COREDUMP_COMM',
  'COREDUMP_EXE',
  'COREDUMP_UNIT',
  'COREDUMP_SIGNAL',
  'COREDUMP_SIGNAL_NAME',
  'SUBTEST',
  'SUBTEST_RESULT',
  // The hang report: the unit's pids, and kernel lines' own times (journalctl always adds __MONOTONIC_TIMESTAMP).
  '_PID',
  '_SYSTEMD_CGROUP',
  '_SOURCE_MONOTONIC_TIMESTAMP',
];

export function digestArgv(journalctl: string, file: string): string[] {
  return [
    journalctl,
    '--file',
    file,
    '--no-pager',
    '-o',
    'json',
    `--output-fields=${DIGEST_FIELDS.join(',')}`,
  ];
}

export async function digestJournal(p: {
  journalctl: string;
  file: string;
  unit: string;
  consoleTail?: string[];
  limits?: DigestLimits;
}): Promise<JournalDigest> {
  const builder = new DigestBuilder(p.unit, p.limits ?? DEFAULT_LIMITS);
  const [cmd, ...args] = digestArgv(p.journalctl, p.file);
  const child = spawn(cmd!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      builder.note(`cannot run ${cmd}: ${err.message}`);
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  let bad = 0;
  for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
    if (!line) continue;
    try {
      builder.add(JSON.parse(line) as Entry);
    } catch {
      bad++;
    }
  }
  const code = await exited;
  if (bad > 0) builder.note(`${bad} journal entries could not be parsed`);
  if (code !== 0 && code !== null) {
    const why = stderr.trim().split('\n').slice(-1)[0] ?? '';
    builder.note(
      `journalctl exited ${code} reading ${p.file}${why ? `: ${why}` : ''}; the digest covers the entries read before that` +
        (/incompatible|unsupported|protocol/i.test(why)
          ? ' (journal probably written by a newer systemd; use mkosi journalctl or the guest-side journalctl)'
          : ''),
    );
  } else if (/corrupt|truncat/i.test(stderr)) {
    builder.note(`journalctl reported a damaged journal: ${stderr.trim().split('\n')[0]}`);
  }
  if (p.consoleTail) builder.addConsole(p.consoleTail);
  return builder.finish();
}

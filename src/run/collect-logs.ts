/**
 * After a VM ended: what it left, read back. The journal (turned into a .journal from the serial export
 * stream first), its header check and digest, the guest's status line and the console's tail.
 */
import { open, readdir, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TestSpec } from '../config/test-spec.ts';
import type { JournalDigest } from '../digest/model.ts';
import { digestJournal } from '../digest/read-journal.ts';
import { stripAnsi } from '../util/ansi.ts';
import { checkJournal, exportToJournal, type JournalCheck } from './journal.ts';
import { OutputLayout, type TestFiles } from './output-layout.ts';

export interface Collected {
  check: JournalCheck;
  statusLine?: string;
  consoleTail: string[];
  digest: JournalDigest;
}

/** The last 64 KiB of a file as lines, ANSI stripped. */
export async function tail(file: string, maxBytes = 64 * 1024): Promise<string[]> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return stripAnsi(buf.toString('utf8')).split(/\r?\n/);
    } finally {
      await fh.close();
    }
  } catch {
    return [];
  }
}

/** Files journal-remote rotated out of the journal. */
async function rotatedSiblings(journal: string): Promise<number> {
  return (await readdir(dirname(journal)).catch(() => [] as string[])).filter((f) =>
    OutputLayout.isRotatedJournal(f, journal),
  ).length;
}

async function lastLine(file: string): Promise<string | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-1)[0];
}

export async function collectLogs(
  spec: TestSpec,
  files: TestFiles,
  o: { serial: boolean; journalRemote: string; journalctl: string },
): Promise<Collected> {
  const journalError = o.serial
    ? await exportToJournal(o.journalRemote, files.journalExport, files.journal)
    : undefined;
  const check = journalError
    ? { entries: 0, error: journalError }
    : await checkJournal(o.journalctl, files.journal);
  const statusLine = await lastLine(files.status);
  const consoleTail = await tail(files.console);
  const digest = await digestJournal({
    journalctl: o.journalctl,
    file: files.journal,
    unit: spec.unit,
    consoleTail,
  });
  if (check.error) digest.notes.unshift(check.error);
  const rotated = await rotatedSiblings(files.journal);
  if (rotated > 0) {
    digest.notes.push(
      `systemd-journal-remote rotated this journal: ${rotated} earlier file(s) beside it hold the beginning ` +
        `(read all with journalctl --file '${files.journal.replace(/\.journal$/, '')}*.journal'); the digest covers the last file`,
    );
  }
  // The export stream is only an intermediate; the .journal holds the same entries.
  if (!check.error) await rm(files.journalExport, { force: true });
  return { check, ...(statusLine ? { statusLine } : {}), consoleTail, digest };
}

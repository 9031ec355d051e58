/**
 * After a VM ended: what it left, read back. The journal (turned into a .journal from the serial export
 * stream first), its header check and digest, the guest's status line and the console's tail.
 */
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TestSpec } from '../config/test-spec.ts';
import type { JournalDigest } from '../digest/model.ts';
import { digestJournal } from '../digest/read-journal.ts';
import { stripAnsi } from '../util/ansi.ts';
import { checkJournal, exportToJournal, type JournalCheck } from './journal.ts';
import { OutputLayout, type TestFiles } from './output-layout.ts';

export interface Collected {
  check: JournalCheck;
  /** Every line of the status port, in order. */
  statusLines: string[];
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

async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/**
 * Serial transport: the export stream into the journal. When no readable journal with entries came of a
 * stream that arrived, the stream is the journal's only copy: it moves beside the console log (the work
 * directory goes at the next attempt and at the end of the run), and a note says how to convert it by hand.
 */
async function convertExport(
  files: TestFiles,
  o: { journalRemote: string; journalctl: string },
): Promise<{ check: JournalCheck; notes: string[] }> {
  const conv = await exportToJournal(o.journalRemote, files.journalExport, files.journal);
  let check = conv.error
    ? { entries: 0, error: conv.error }
    : await checkJournal(o.journalctl, files.journal);
  // journal-remote exits 0 having written nothing from a stream it cannot parse.
  if (!check.error && check.entries === 0)
    check = {
      entries: 0,
      error: `systemd-journal-remote wrote no journal entries from the ${conv.bytes}-byte export stream`,
    };
  if (!check.error) {
    // The stream was only an intermediate; the .journal holds the same entries.
    await rm(files.journalExport, { force: true });
    return { check, notes: [] };
  }
  if (conv.bytes === 0) return { check, notes: [] };
  // rename replaces whatever is at the kept name (a symlink included) and never writes through it.
  const kept = await rename(files.journalExport, files.keptExport).then(
    () => undefined,
    (e: Error) => e.message,
  );
  return {
    check,
    notes: [
      kept === undefined
        ? `the raw journal stream (${conv.bytes} bytes, the journal's only copy) is kept in ${files.keptExport}; ` +
          `convert it by hand: ${o.journalRemote} -o ${files.journal} ${files.keptExport}`
        : `the raw journal stream could not be kept (${kept}); it is lost with the work directory`,
    ],
  };
}

export async function collectLogs(
  spec: TestSpec,
  files: TestFiles,
  o: { serial: boolean; journalRemote: string; journalctl: string },
): Promise<Collected> {
  const { check, notes } = o.serial
    ? await convertExport(files, o)
    : { check: await checkJournal(o.journalctl, files.journal), notes: [] };
  const statusLines = await lines(files.status);
  const consoleTail = await tail(files.console);
  const digest = await digestJournal({
    journalctl: o.journalctl,
    file: files.journal,
    unit: spec.unit,
    consoleTail,
  });
  if (check.error) digest.notes.unshift(check.error);
  digest.notes.push(...notes);
  const rotated = await rotatedSiblings(files.journal);
  if (rotated > 0) {
    digest.notes.push(
      `systemd-journal-remote rotated this journal: ${rotated} earlier file(s) beside it hold the beginning ` +
        `(read all with journalctl --file '${files.journal.replace(/\.journal$/, '')}*.journal'); the digest covers the last file`,
    );
  }
  return { check, statusLines, consoleTail, digest };
}

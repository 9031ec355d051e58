/** Journal adapters: turn an export stream into a .journal file, count entries, read a unit's last lines. */
import { rm, stat } from 'node:fs/promises';
import { runCommand } from '../util/process.ts';

export interface JournalCheck {
  entries: number;
  error?: string;
}

/** How the serial export stream fared: its size, and why no journal came of it, if none did. */
export interface Conversion {
  bytes: number;
  error?: string;
}

/** Serial transport: `systemd-journal-remote -o OUT.journal EXPORT`. A truncated stream still yields what it held. */
export async function exportToJournal(
  journalRemote: string,
  exportFile: string,
  out: string,
): Promise<Conversion> {
  const size = await stat(exportFile)
    .then((s) => s.size)
    .catch(() => -1);
  if (size < 0) return { bytes: 0, error: 'no journal stream arrived (the export file does not exist)' };
  if (size === 0)
    return {
      bytes: 0,
      error: 'the journal stream is empty (journal export unit never ran or the port never opened)',
    };
  // The journal is ours to create: journal-remote appends to (and follows) whatever is at that name.
  await rm(out, { force: true });
  const r = await runCommand([journalRemote, '-o', out, exportFile], { timeoutMs: 120_000 });
  if (r.spawnError) return { bytes: size, error: `cannot run ${journalRemote}: ${r.spawnError.message}` };
  if (r.code !== 0) {
    const exists = await stat(out)
      .then(() => true)
      .catch(() => false);
    // journal-remote exits non-zero on a truncated last entry but has written the ones before it.
    if (!exists) {
      const how = r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
      return {
        bytes: size,
        error: `systemd-journal-remote failed (${how}): ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`,
      };
    }
  }
  return { bytes: size };
}

/** Entry count from the journal header; errors say why the file cannot be read (e.g. written by a newer systemd). */
export async function checkJournal(journalctl: string, file: string): Promise<JournalCheck> {
  const exists = await stat(file)
    .then(() => true)
    .catch(() => false);
  if (!exists) return { entries: 0, error: `no journal file at ${file}` };
  const r = await runCommand([journalctl, '--file', file, '--header', '--no-pager'], { timeoutMs: 60_000 });
  const m = /^Entry objects:\s*(\d+)/m.exec(r.stdout);
  if (r.code !== 0 || !m) {
    const why = r.stderr.trim().split('\n').slice(-1)[0] ?? `exit ${r.code}`;
    const hint = /incompatible|unsupported|protocol/i.test(why)
      ? ' (the journal was probably written by a newer systemd than this journalctl; read it with the guest-side or mkosi tools-tree journalctl, e.g. `mkosi journalctl`)'
      : '';
    return { entries: 0, error: `cannot read ${file}: ${why}${hint}` };
  }
  return { entries: Number(m[1]) };
}

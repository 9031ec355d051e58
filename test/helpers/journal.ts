// Makes real journal files for tests: export-format text through the real systemd-journal-remote.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const JOURNAL_REMOTE = [
  '/usr/lib/systemd/systemd-journal-remote',
  '/lib/systemd/systemd-journal-remote',
].find(existsSync)!;

/** Serializes entries in the journal export format; values with newlines use the binary form. */
export function exportFormat(
  entries: Record<string, string>[],
  bootId = '0123456789abcdef0123456789abcdef',
): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((fields, i) => {
    const head = `__CURSOR=s=1;i=${i + 1}\n__REALTIME_TIMESTAMP=${1700000000000000 + i}\n__MONOTONIC_TIMESTAMP=${1000000 + i}\n_BOOT_ID=${bootId}\n_HOSTNAME=guest\n`;
    parts.push(Buffer.from(head));
    for (const [k, v] of Object.entries(fields)) {
      if (v.includes('\n')) {
        const size = Buffer.alloc(8);
        size.writeBigUInt64LE(BigInt(Buffer.byteLength(v)));
        parts.push(Buffer.from(`${k}\n`), size, Buffer.from(`${v}\n`));
      } else parts.push(Buffer.from(`${k}=${v}\n`));
    }
    parts.push(Buffer.from('\n'));
  });
  return Buffer.concat(parts);
}

export async function makeJournal(entries: Record<string, string>[], dir?: string): Promise<string> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'itest-journal-')));
  const exp = join(d, 'in.export');
  const out = join(d, 'test.journal');
  await writeFile(exp, exportFormat(entries));
  execFileSync(JOURNAL_REMOTE, ['-o', out, exp], { stdio: 'ignore' });
  return out;
}

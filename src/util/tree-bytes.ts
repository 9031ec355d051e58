/** Apparent size of the regular files under `dir` (what tar reads; symlinks not followed), 0 when it does not exist. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  for (const e of entries) {
    const st = await lstat(join(dir, e)).catch(() => undefined);
    if (st?.isFile()) total += st.size;
  }
  return total;
}

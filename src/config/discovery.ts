/** Finds test units shipped in the config's extra trees (the only filesystem access of test planning). */
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Unit directories inside an extra tree, as systemd searches them. */
const UNIT_DIRS = ['usr/lib/systemd/system', 'etc/systemd/system', 'lib/systemd/system'];

/** Names of the unit files found in mkosi.extra/ (and the given extra trees) of a config directory. */
export async function findUnitFiles(configDir: string, extraTrees: string[] = []): Promise<string[]> {
  const trees = ['mkosi.extra', ...extraTrees].map((t) => resolve(configDir, t));
  const names = new Set<string>();
  for (const tree of trees) {
    for (const dir of UNIT_DIRS) {
      let entries: string[];
      try {
        entries = await readdir(join(tree, dir));
      } catch {
        continue;
      }
      for (const e of entries) names.add(e);
    }
  }
  return [...names].sort();
}

/**
 * The second-level cache: mkosi's incremental state kept under the base key (base-key.ts). BaseStore is
 * what the build needs of a backend; LocalBaseStore below keeps it on the local disk, the action's keeps
 * it in the Actions cache (src/action/github/base-cache.ts).
 *
 * On the local disk: mkosi's incremental state kept under the base key
 * (base-key.ts), one directory per key under `<cache-dir>/base/`, each with mkosi's cache directory
 * (Incremental='s cached trees), its package cache and its build directory. On an exact miss the most
 * recently used state of the same prefix (architecture and mkosi version) is taken over: a near match
 * still holds most packages, and mkosi checks its cached trees against the config before it uses them.
 * Bounded: the two most recent states per prefix, and none above `maxBytes` in all.
 */
import { mkdir, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { treeBytes } from '../util/tree-bytes.ts';

export interface BaseState {
  /** The state's directory; `cache`, `packages` and `build` below it exist. */
  dir: string;
  /** `exact`, `near` (taken over from `from`) or `fresh` (nothing to start from). */
  match: 'exact' | 'near' | 'fresh';
  from?: string;
  bytes: number;
  /** Seconds the restore took (a download, for the Actions cache). */
  seconds?: number;
  /** What the backend found, when it is worth telling (a refused or failed restore). */
  note?: string;
}

/** What save() did with the state after a good build. */
export interface BaseSaved {
  /** Bytes kept (stored or uploaded). */
  bytes: number;
  pruned: string[];
  /** The key it went under, when it differs from the base key (the Actions cache's entries are immutable). */
  savedKey?: string;
  /** What of the state was saved, when not all of it (`cache` = mkosi's trees, `packages`, `build`). */
  parts?: string[];
  /** Why it was not saved (untrusted event, too big, already there, a failure). */
  skipped?: string;
  seconds?: number;
}

/** A backend of the second-level cache. */
export interface BaseStore {
  readonly backend: string;
  /** The state for key: its own, else a near one of the same prefix, else a fresh one. */
  restore(key: string, prefix: string): Promise<BaseState>;
  /** Empties a state (a failed incremental build starts again from scratch). */
  wipe(dir: string): Promise<void>;
  /** After a good build; `rebuilt` when the restored state broke the build and it was built from scratch. */
  save(key: string, o?: { rebuilt?: boolean }): Promise<BaseSaved>;
}

/** The mkosi arguments that build incrementally from a state (spellings mkosi 24 to 27 all take). Pure. */
export function incrementalArgs(dir: string): string[] {
  return [
    '--incremental=yes',
    `--cache-dir=${join(dir, 'cache')}`,
    `--package-cache-dir=${join(dir, 'packages')}`,
    `--build-dir=${join(dir, 'build')}`,
  ];
}

/** What a state holds: mkosi's cache directory (its cached trees), its package cache, its build directory. */
export const STATE_PARTS = ['cache', 'packages', 'build'] as const;

/** Makes the parts of a state that are missing. */
export async function fillState(dir: string): Promise<void> {
  for (const s of STATE_PARTS) await mkdir(join(dir, s), { recursive: true });
}

/** Empties a state: its parts, fresh. */
export async function wipeState(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await fillState(dir);
}

export class LocalBaseStore implements BaseStore {
  readonly backend = 'local';
  constructor(
    readonly root: string,
    readonly keepPerPrefix = 2,
    readonly maxBytes = 20 * 1024 ** 3,
  ) {}

  /** The state for key: its own, else the newest of the same prefix taken over, else a fresh one. */
  async restore(key: string, prefix: string): Promise<BaseState> {
    await mkdir(this.root, { recursive: true });
    const dir = join(this.root, key);
    if (await stat(dir).catch(() => undefined)) {
      await fillState(dir);
      return { dir, match: 'exact', bytes: await treeBytes(dir) };
    }
    const near = (await this.aged()).filter((a) => a.key.startsWith(prefix))[0];
    if (near) {
      // A rename, not a copy: the older base is superseded, and its packages may be gigabytes.
      await rename(join(this.root, near.key), dir);
      await fillState(dir);
      return { dir, match: 'near', from: near.key, bytes: await treeBytes(dir) };
    }
    await fillState(dir);
    return { dir, match: 'fresh', bytes: 0 };
  }

  /** Empties a state (a failed incremental build starts again from scratch). */
  async wipe(dir: string): Promise<void> {
    await wipeState(dir);
  }

  /** After a good build: the state is the newest, and the oldest beyond the bounds go. */
  async save(key: string): Promise<BaseSaved> {
    const dir = join(this.root, key);
    const now = new Date();
    await utimes(dir, now, now);
    const pruned: string[] = [];
    const aged = await this.aged();
    const prefixOf = (k: string) => k.replace(/[0-9a-f]{32}$/, '');
    const seen = new Map<string, number>();
    let total = 0;
    for (const a of aged) {
      const n = (seen.get(prefixOf(a.key)) ?? 0) + 1;
      seen.set(prefixOf(a.key), n);
      const bytes = await treeBytes(join(this.root, a.key));
      if (a.key !== key && (n > this.keepPerPrefix || total + bytes > this.maxBytes)) {
        await rm(join(this.root, a.key), { recursive: true, force: true });
        pruned.push(a.key);
      } else total += bytes;
    }
    return { bytes: await treeBytes(dir), pruned };
  }

  /** The states, newest first. */
  private async aged(): Promise<{ key: string; t: number }[]> {
    const keys = await readdir(this.root).catch(() => [] as string[]);
    const aged = await Promise.all(
      keys.map(async (key) => ({
        key,
        t: (await stat(join(this.root, key)).catch(() => undefined))?.mtimeMs ?? 0,
      })),
    );
    return aged.sort((a, b) => b.t - a.t);
  }
}

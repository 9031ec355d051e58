/**
 * ImageCache in a local directory: `<root>/images/<key>/` holds mkosi's output, with a marker written
 * last so a half-saved image never counts as a hit. VMs boot straight from there (mkosi --ephemeral
 * copies the disk per VM), so a hit costs no copy. Keeps the newest few images.
 */
import { mkdir, readdir, rename, rm, stat, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageCache, RestoreResult } from './image-cache.ts';

const MARKER = 'itest-image.json';

export class LocalImageCache implements ImageCache {
  readonly backend = 'local';
  constructor(
    readonly root: string,
    readonly keep = 3,
  ) {}

  private dirFor(key: string) {
    return join(this.root, 'images', key);
  }

  async restore(key: string): Promise<RestoreResult> {
    const dir = this.dirFor(key);
    try {
      await stat(join(dir, MARKER));
    } catch {
      return { hit: false, detail: `no image for ${key} in ${join(this.root, 'images')}` };
    }
    const now = new Date();
    await utimes(join(dir, MARKER), now, now).catch(() => {});
    return { hit: true, dir, detail: `image ${key} found in ${dir}` };
  }

  async buildDir(key: string): Promise<string> {
    const dir = join(this.root, 'build', `${key}.${process.pid}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async save(key: string, builtDir: string): Promise<string> {
    const dir = this.dirFor(key);
    await mkdir(join(this.root, 'images'), { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await rename(builtDir, dir);
    await writeFile(join(dir, MARKER), `${JSON.stringify({ key, savedAt: new Date().toISOString() })}\n`);
    await this.prune(key);
    return dir;
  }

  /** Drops all but the `keep` most recently used images (never the one just saved). */
  private async prune(current: string): Promise<void> {
    const base = join(this.root, 'images');
    const entries = await readdir(base).catch(() => [] as string[]);
    const aged = await Promise.all(
      entries.map(async (k) => ({
        k,
        t: await stat(join(base, k, MARKER)).then(
          (s) => s.mtimeMs,
          () => 0,
        ),
      })),
    );
    const old = aged
      .filter((e) => e.k !== current)
      .sort((a, b) => b.t - a.t)
      .slice(Math.max(0, this.keep - 1));
    for (const e of old) await rm(join(base, e.k), { recursive: true, force: true });
  }
}

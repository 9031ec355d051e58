/**
 * Remembers the accelerator probes' verdicts for the current host boot, so that only the first run after a
 * boot pays for them. Keyed by the kernel's boot id plus whatever the verdict depends on (QEMU version,
 * the guest kernel's digest); a new boot forgets everything. A missing, unreadable or foreign file is an
 * empty cache, never an error.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface CachedVerdict {
  usable: boolean;
  detail: string;
  /** QEMU's own line when it failed. */
  qemuLine?: string;
  /** What the probe cost when it ran. */
  seconds: number;
  at: string;
}

interface CacheFile {
  version: 1;
  bootId: string;
  verdicts: Record<string, CachedVerdict>;
}

export async function currentBootId(): Promise<string | undefined> {
  const id = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '');
  return id.trim() || undefined;
}

export class VerdictCache {
  private readonly file: string;
  /** Where the verdicts are kept (said in messages, so a user can delete it). */
  get path(): string {
    return this.file;
  }
  constructor(
    dir: string,
    private readonly bootId: string | undefined,
  ) {
    this.file = join(dir, 'host', 'accel-verdicts.json');
  }

  static async open(cacheDir: string): Promise<VerdictCache> {
    return new VerdictCache(cacheDir, await currentBootId());
  }

  private async load(): Promise<CacheFile | undefined> {
    if (!this.bootId) return undefined;
    try {
      const data = JSON.parse(await readFile(this.file, 'utf8')) as CacheFile;
      return data.version === 1 && data.bootId === this.bootId && typeof data.verdicts === 'object'
        ? data
        : undefined;
    } catch {
      return undefined;
    }
  }

  async get(key: string): Promise<CachedVerdict | undefined> {
    const v = (await this.load())?.verdicts[key];
    return v && typeof v.usable === 'boolean' && typeof v.detail === 'string' ? v : undefined;
  }

  /** Records a verdict; best effort (a read-only cache directory only costs the next run a probe). */
  async set(key: string, v: CachedVerdict): Promise<void> {
    if (!this.bootId) return;
    const data: CacheFile = (await this.load()) ?? { version: 1, bootId: this.bootId, verdicts: {} };
    data.verdicts[key] = v;
    const dir = join(this.file, '..');
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await mkdir(dir, { recursive: true });
      // Never write through a link someone planted: write a fresh file, then rename it over the name.
      if ((await lstat(dir)).isSymbolicLink()) return;
      await writeFile(tmp, `${JSON.stringify(data, null, 2)}\n`, { flag: 'wx' });
      await rename(tmp, this.file);
    } catch {
      await rm(tmp, { force: true }).catch(() => {});
    }
  }
}

/**
 * ImageCache in a local directory, safe for several runs on one machine at once (by-hand sharding starts
 * them together):
 *
 *   images/<key>/                   an image: mkosi's output and the marker, renamed into place whole and
 *                                   never replaced; a lookup is a hit only while the marker is there
 *   refs/<key>@<token>              one empty file per run that uses <key> (token: live-process.ts, true
 *                                   across PID reuse); no image is deleted while a run named there lives
 *   build/<key>.<token>[.old-<hex>] a run's scratch: its build, or an image on its way out; removed by
 *                                   whoever finds that run gone (failed, cancelled or killed builds)
 *   locks/<key>                     the build lock (token-lock.ts): the one run building <key>; others that
 *                                   miss wait for its image, and build themselves only once it is gone
 *
 * Prune hides an image (marker renamed to .doomed) before it looks for users one last time, so a run
 * either finds the marker and is seen, or misses: the directory never goes while a run holds it.
 * VMs boot straight from images/<key> (mkosi --ephemeral copies the disk per VM), so a hit costs no copy.
 * Keeps the newest few images; older ones only once no live run uses them.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildClaim, ClaimOptions, ImageCache, RestoreResult } from './image-cache.ts';
import { isAlive, selfToken } from './live-process.ts';
import { breakIfDead, lockHolder, pause, releaseLock, takeLock } from './token-lock.ts';

const MARKER = 'itest-image.json';
const DOOMED = `${MARKER}.doomed`;
const KEY = /^[A-Za-z0-9._-]+$/;
/** A build/ entry's run: `<key>.<token>`, `.old-<hex>` after it for an image moved aside. */
const SCRATCH = /\.(\d+-\d+-[0-9a-f]{8})(?:\.old-[0-9a-f]+)?$/;
/** What itest wrote there before tokens: `<key>.<pid>`. */
const LEGACY_SCRATCH = /\.(\d+)$/;

const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? '';
/** rename(2) onto a directory that has entries. */
const occupied = (e: unknown) => code(e) === 'ENOTEMPTY' || code(e) === 'EEXIST';

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return code(e) === 'EPERM';
  }
}

export class LocalImageCache implements ImageCache {
  readonly backend = 'local';
  constructor(
    readonly root: string,
    readonly keep = 3,
  ) {}

  private get images(): string {
    return join(this.root, 'images');
  }
  private get builds(): string {
    return join(this.root, 'build');
  }
  private get refs(): string {
    return join(this.root, 'refs');
  }

  private dirFor(key: string): string {
    if (!KEY.test(key))
      throw new Error(`local image cache: key ${JSON.stringify(key)} is not a plain file name`);
    return join(this.images, key);
  }

  async restore(key: string): Promise<RestoreResult> {
    const dir = this.dirFor(key);
    // The reference before the lookup: a prune that finds none can only take what this lookup then misses.
    await this.reference(key);
    if (!(await this.whole(dir))) {
      await this.release(key);
      return { hit: false, detail: `no image for ${key} in ${this.images}` };
    }
    const now = new Date();
    await utimes(join(dir, MARKER), now, now).catch(() => {});
    return { hit: true, dir, detail: `image ${key} found in ${dir}` };
  }

  /** Ends this process's use of key before the process ends (which ends it too). */
  async release(key: string): Promise<void> {
    await rm(join(this.refs, `${key}@${await selfToken()}`), { force: true });
  }

  /**
   * Many runs that miss at once (`meson test -j N` starts one itest per test) build once: the first takes
   * the lock and builds, the others poll for its image; when the builder is gone without one (failed,
   * killed), the next takes over.
   */
  async claimBuild(key: string, o: ClaimOptions = {}): Promise<BuildClaim> {
    this.dirFor(key);
    const locks = join(this.root, 'locks');
    await mkdir(locks, { recursive: true });
    const lock = join(locks, key);
    let told = false;
    for (;;) {
      if (await takeLock(lock)) {
        // The builder before us may have saved between our miss and our lock.
        const late = await this.restore(key);
        if (late.hit) {
          await releaseLock(lock);
          return { restored: late };
        }
        return { release: () => releaseLock(lock) };
      }
      if (await breakIfDead(lock)) continue;
      const done = await this.restore(key);
      if (done.hit) return { restored: done };
      if (!told) {
        told = true;
        o.onWait?.((await lockHolder(lock)) ?? '?');
      }
      await pause(o.pollMs ?? 500, o.signal);
    }
  }

  async buildDir(key: string): Promise<string> {
    this.dirFor(key);
    await this.sweep();
    const dir = join(this.builds, `${key}.${await selfToken()}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async discard(builtDir: string): Promise<void> {
    await rm(builtDir, { recursive: true, force: true });
  }

  async save(key: string, builtDir: string): Promise<string> {
    const dir = this.dirFor(key);
    await this.reference(key);
    await writeFile(
      join(builtDir, MARKER),
      `${JSON.stringify({ key, savedAt: new Date().toISOString() })}\n`,
    );
    await mkdir(this.images, { recursive: true });
    for (let tries = 1; ; tries++) {
      try {
        await rename(builtDir, dir);
        break;
      } catch (e) {
        if (!occupied(e)) throw e;
      }
      // Another run published this key first: its image is as good, and it may be booting it.
      if (await this.whole(dir)) {
        await this.discard(builtDir);
        const now = new Date();
        await utimes(join(dir, MARKER), now, now).catch(() => {});
        break;
      }
      if (await this.inUse(key, true)) {
        // Hidden by a prune (running, or died half-way) while another run uses it: undo that, then take it.
        await rename(join(dir, DOOMED), join(dir, MARKER)).catch(() => {});
      } else {
        // Unused and unmarked: on its way out, or half-saved by an itest that saved in two steps.
        const aside = await this.moveAside(key);
        if (aside) await rm(aside, { recursive: true, force: true });
      }
      // Never seen settle: boot the build where it is (swept once this run is gone).
      if (tries === 50) return builtDir;
      await new Promise((r) => setTimeout(r, 10));
    }
    await this.prune(key);
    return dir;
  }

  private async whole(dir: string): Promise<boolean> {
    return stat(join(dir, MARKER)).then(
      () => true,
      () => false,
    );
  }

  private async reference(key: string): Promise<void> {
    await mkdir(this.refs, { recursive: true });
    await writeFile(join(this.refs, `${key}@${await selfToken()}`), '');
  }

  /** Whether a live run (another than this one) references key; references of runs gone are removed. */
  private async inUse(key: string, others = false): Promise<boolean> {
    const self = await selfToken();
    let used = false;
    for (const name of await readdir(this.refs).catch(() => [] as string[])) {
      const at = name.lastIndexOf('@');
      const token = name.slice(at + 1);
      if (name.slice(0, at) !== key || (others && token === self)) continue;
      if (await isAlive(token)) used = true;
      else await rm(join(this.refs, name), { force: true });
    }
    return used;
  }

  /** Renames images/<key> to scratch of this run; undefined when it is not there. */
  private async moveAside(key: string): Promise<string | undefined> {
    await mkdir(this.builds, { recursive: true });
    const aside = join(this.builds, `${key}.${await selfToken()}.old-${randomBytes(4).toString('hex')}`);
    try {
      await rename(this.dirFor(key), aside);
      return aside;
    } catch (e) {
      if (code(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Drops all but the `keep` most recently used images (never the one just saved, nor one in use). */
  private async prune(current: string): Promise<void> {
    await this.sweep();
    const entries = await readdir(this.images).catch(() => [] as string[]);
    const aged = await Promise.all(
      entries
        .filter((k) => k !== current && KEY.test(k))
        .map(async (k) => ({
          k,
          t: await stat(join(this.images, k, MARKER)).then(
            (s) => s.mtimeMs,
            () => 0,
          ),
        })),
    );
    const old = aged.sort((a, b) => b.t - a.t).slice(Math.max(0, this.keep - 1));
    for (const { k } of old) {
      if (await this.inUse(k)) continue;
      const dir = this.dirFor(k);
      // Hidden first: a run that looked before has its reference in place now, one that looks later misses.
      await rename(join(dir, MARKER), join(dir, DOOMED)).catch(() => {});
      if (await this.inUse(k)) {
        await rename(join(dir, DOOMED), join(dir, MARKER)).catch(() => {});
        continue;
      }
      const aside = await this.moveAside(k);
      if (aside) await rm(aside, { recursive: true, force: true }).catch(() => {});
    }
  }

  /** Removes the scratch of runs that are gone. Best effort: what fails now goes next time. */
  private async sweep(): Promise<void> {
    const self = await selfToken();
    for (const name of await readdir(this.builds).catch(() => [] as string[])) {
      const token = SCRATCH.exec(name)?.[1];
      const legacy = LEGACY_SCRATCH.exec(name)?.[1];
      const gone = token ? token !== self && !(await isAlive(token)) : !legacy || !pidExists(Number(legacy));
      if (gone) await rm(join(this.builds, name), { recursive: true, force: true }).catch(() => {});
    }
  }
}

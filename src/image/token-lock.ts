/**
 * A file that one live process holds: its content is the holder's token (live-process.ts), so whether the
 * holder still runs is known from the file alone, whatever ended it (SIGKILL included). The image cache's
 * build lock and the host's VM slots are such files.
 *
 * Taking is exclusive: the token is written to a file of this process first, then hard-linked to the
 * lock's name (link(2) fails on an existing name), so nobody ever sees a lock without its holder. Breaking
 * a dead holder's lock renames it aside first and checks what it moved: should a live process have taken
 * the name in between (two breakers of one dead lock), its file goes back. The one race left (a third
 * process taking the name in the instant before it goes back) needs a dead holder and three processes
 * within microseconds; it costs one VM over the budget, never a lost image.
 */
import { randomBytes } from 'node:crypto';
import { link, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { isAlive, selfToken } from './live-process.ts';

const code = (e: unknown) => (e as NodeJS.ErrnoException).code ?? '';

/** Takes the lock at path for this process; false when another holds it. */
export async function takeLock(path: string): Promise<boolean> {
  const me = await selfToken();
  const mine = `${path}.${me}.${randomBytes(4).toString('hex')}`;
  await writeFile(mine, me, { flag: 'wx' });
  try {
    await link(mine, path);
    return true;
  } catch (e) {
    if (code(e) === 'EEXIST') return false;
    throw e;
  } finally {
    await rm(mine, { force: true });
  }
}

/** The token of the lock's holder; undefined when nobody holds it. */
export async function lockHolder(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').then(
    (t) => t.trim(),
    () => undefined,
  );
}

/**
 * Removes the lock when its holder is gone; true when the lock is free now (broken, or released
 * meanwhile), false while a live process holds it.
 */
export async function breakIfDead(path: string): Promise<boolean> {
  const holder = await lockHolder(path);
  if (holder === undefined) return true;
  if (holder === (await selfToken()) || (await isAlive(holder))) return false;
  const aside = `${path}.dead-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (e) {
    if (code(e) === 'ENOENT') return true;
    throw e;
  }
  if ((await lockHolder(aside)) !== holder) {
    // A live process took the name after we read it: its lock goes back (unless the name is taken again).
    await link(aside, path).catch(() => {});
    await rm(aside, { force: true });
    return false;
  }
  await rm(aside, { force: true });
  return true;
}

/** Releases the lock if this process holds it (never someone else's). */
export async function releaseLock(path: string): Promise<void> {
  if ((await lockHolder(path)) === (await selfToken())) await rm(path, { force: true });
}

/** Sleeps ms, or rejects with the signal's reason when it aborts first. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The base state (src/image/base-store.ts) as one tar file for the Actions cache. @actions/cache archives
 * its paths without extended attributes, ACLs or numeric owners, and its archive goes through the tar
 * guard, which refuses the absolute symbolic links every OS tree has. So the state is packed here into
 * `base-state.tar` with everything mkosi's cached trees carry (owners, modes, xattrs such as
 * security.capability, ACLs, sparse files), and that one regular file is what the cache stores.
 *
 * mkosi's cached trees (`cache/`) go in only when this process runs as root: only root reads every file
 * of a tree and restores its owners exactly; as another user (GitHub's runners: mkosi builds in a user
 * namespace, its trees belong to subordinate IDs) a restored tree would change owners, and a wrong tree is
 * worse than none. The package cache and the build directory are plain files of this user either way.
 *
 * Unpacking checks the listing first (tar-members.ts: names inside, nothing written through a symbolic
 * link of the archive, no devices) and unpacks into an empty directory of our own.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { checkArchive } from './tar-guard.ts';
import { STATE_PARTS } from '../../image/base-store.ts';

export const STATE_ARCHIVE = 'base-state.tar';

/** What a state archive holds: mkosi's trees only as root (see above). Pure. */
export function stateParts(root: boolean): string[] {
  return STATE_PARTS.filter((p) => root || p !== 'cache');
}

/** Attributes a tree needs beyond its bytes: mkosi copies its trees with them, so must we. */
const KEEP = ['--xattrs', '--xattrs-include=*', '--acls', '--numeric-owner'];

/** tar's arguments to pack `parts` of `dir` into `archive`. Pure. */
export function packArgv(dir: string, archive: string, parts: readonly string[]): string[] {
  return ['-c', ...KEEP, '--sparse', '-f', archive, '-C', dir, '--', ...parts];
}

/**
 * tar's arguments to unpack `archive` into `dir` (owners kept when root, tar's own default). Not root:
 * mkosi's trees stay in the archive (one saved by a root job elsewhere would come out with this user's
 * owners: a wrong tree). Pure.
 */
export function unpackArgv(archive: string, dir: string, root: boolean): string[] {
  return [
    '-x',
    ...KEEP,
    '--preserve-permissions',
    ...(root ? [] : ['--anchored', '--exclude=cache']),
    '-f',
    archive,
    '-C',
    dir,
  ];
}

function runTar(tar: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    let err = '';
    const child = spawn(tar, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    child.on('error', (e) => resolve(`cannot run ${tar}: ${e.message}`));
    child.on('close', (code, signal) =>
      resolve(
        code === 0
          ? undefined
          : `tar ${args[0]} ended with ${signal ?? `exit ${code}`}: ${err.trim().split('\n').slice(-3).join(' | ')}`,
      ),
    );
  });
}

/** Packs the state into `<into>/base-state.tar` (into is emptied first); why not, when it failed. */
export async function packState(
  tar: string,
  state: string,
  into: string,
  root: boolean,
): Promise<string | undefined> {
  await rm(into, { recursive: true, force: true });
  await mkdir(into, { recursive: true });
  const present = new Set(await readdir(state).catch(() => [] as string[]));
  const parts = stateParts(root).filter((p) => present.has(p));
  if (parts.length === 0) return 'the state is empty';
  return runTar(tar, packArgv(state, join(into, STATE_ARCHIVE), parts));
}

/**
 * Unpacks `<from>/base-state.tar` into `state`, which must be empty (it is made here); why not, when the
 * archive was refused or tar failed (the directory is then emptied again: no half state is used).
 */
export async function unpackState(
  tar: string,
  from: string,
  state: string,
  root: boolean,
): Promise<string | undefined> {
  const archive = join(from, STATE_ARCHIVE);
  const refused = await checkArchive(tar, { archive, compression: [] }, '', undefined, {
    anyLinkTarget: true,
  });
  if (refused !== undefined) return `the archive was refused: ${refused}`;
  await rm(state, { recursive: true, force: true });
  await mkdir(state, { recursive: true });
  const failed = await runTar(tar, unpackArgv(archive, state, root));
  if (failed !== undefined) {
    await rm(state, { recursive: true, force: true });
    await mkdir(state, { recursive: true });
  }
  return failed;
}

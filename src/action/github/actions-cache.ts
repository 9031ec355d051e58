/**
 * ImageCache on the GitHub Actions cache (@actions/cache). Exact keys only: another key means another
 * configuration, which must be rebuilt, not approximated. Every cache failure is a warning and the run
 * goes on (restore miss -> build; save failure -> the image is still used). Saves only from trusted events.
 *
 * Both directions have a deadline: @actions/cache waits up to ~15 min on a control plane that accepts a
 * request and never answers (3 min socket timeout x 5 attempts) and without end on a blob upload that
 * hangs (the Azure SDK sets no client timeout), so restore and save are abandoned after a bounded time
 * (see CacheOptions; src/util/deadline.ts stops the abandoned call's requests).
 */
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as cache from '@actions/cache';
import type { ImageCache, RestoreResult } from '../../image/image-cache.ts';
import type { GitHubContext } from './context.ts';
import { listProcesses } from '../../util/process.ts';
import { DeadlineExceeded, secondsFromEnv, withDeadline } from '../../util/deadline.ts';
import { treeBytes } from '../../util/tree-bytes.ts';
import { isTarGuardWrapper, withTarGuard } from './tar-guard.ts';

/** Overrides both cache deadlines (seconds) when the constructor does not set them. */
export const CACHE_TIMEOUT_ENV = 'ITEST_CACHE_TIMEOUT_SECONDS';

export interface CacheOptions {
  /**
   * Seconds one restore (lookup, download, unpacking) may take before the image is built instead.
   * Default: $ITEST_CACHE_TIMEOUT_SECONDS, else 600 (the size is not known before the download; a
   * restore slower than that is slower than most builds).
   */
  restoreSeconds?: number;
  /**
   * Seconds one save (packing, upload, finalizing) may take before it is given up with a warning.
   * Default: $ITEST_CACHE_TIMEOUT_SECONDS, else saveDeadlineSeconds(image size): 120 s plus 1 s per
   * 10 MiB, e.g. about 9 min for a 4 GiB image.
   */
  saveSeconds?: number;
  /** Only ask whether the key exists: the prepare mode boots nothing, so a hit needs no download. */
  lookupOnly?: boolean;
  /** Told once save() has stored the image: the prepare mode tells the shard jobs whether they can restore it. */
  onSaved?: (key: string) => void;
}

export const DEFAULT_RESTORE_SECONDS = 600;

/** The default save deadline for an image of `bytes`: 120 s + 1 s per 10 MiB. */
export function saveDeadlineSeconds(bytes: number): number {
  return Math.ceil(120 + bytes / (10 * 1024 ** 2));
}

/**
 * Kills the tar processes @actions/cache started from this process for its archive (cache.tzst,
 * cache.tgz or cache.tar): an abandoned restore must not go on unpacking into the directory the
 * image is then built in, nor an abandoned save go on compressing. Linux only (/proc); returns the pids.
 */
export async function killCacheTar(): Promise<number[]> {
  const killed: number[] = [];
  const procs = await listProcesses();
  const isCache = (argv: string[]) => argv.some((a) => /(^|\/)cache\.(tzst|tgz|tar)$/.test(a));
  // A guarded restore's tar is the child of the tar guard's wrapper (tar-guard.ts): that one goes too, after it.
  const wrappers = procs.filter(
    (p) => p.ppid === process.pid && isTarGuardWrapper(p.argv) && isCache(p.argv),
  );
  const parents = new Set([process.pid, ...wrappers.map((w) => w.pid)]);
  const tars = procs.filter(
    (p) => parents.has(p.ppid) && /^g?tar$/.test(basename(p.argv[0] ?? '')) && isCache(p.argv),
  );
  for (const { pid } of [...tars, ...wrappers]) {
    try {
      process.kill(pid, 'SIGKILL');
      killed.push(pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

export interface SavePolicy {
  allowed: boolean;
  why: string;
}

/** Events that run the repository's own code on one of its branches: their saves may be restored by later runs. */
export const SAVING_EVENTS = ['push', 'schedule', 'workflow_dispatch', 'merge_group'] as const;
/** Pull request events: they save only from the repository itself, and GitHub scopes those caches to the pull request. */
export const PULL_REQUEST_EVENTS = [
  'pull_request',
  'pull_request_review',
  'pull_request_review_comment',
] as const;

/**
 * Whether this run may write the cache: an allowlist, since a poisoned image would be restored by every
 * later run of the branch. Saves happen on the events above, on a branch (refs/heads/*); and from pull
 * requests out of this repository. Never from forks (their code is untrusted), and never from any other
 * event: pull_request_target, workflow_run, issue_comment, repository_dispatch, ... run on the default
 * branch's cache scope while they may build what a stranger chose.
 */
export function savePolicy({
  eventName,
  event,
  ref,
}: Pick<GitHubContext, 'eventName' | 'event' | 'ref'>): SavePolicy {
  const name = eventName ?? 'unknown';
  if ((PULL_REQUEST_EVENTS as readonly string[]).includes(name)) {
    const head = event?.pull_request?.head?.repo?.full_name;
    const base = event?.pull_request?.base?.repo?.full_name;
    if (typeof head !== 'string' || typeof base !== 'string' || head !== base)
      return {
        allowed: false,
        why: `pull request from a fork (${typeof head === 'string' ? head : 'unknown'})`,
      };
    return { allowed: true, why: `${name} from ${base} itself (its cache is scoped to the pull request)` };
  }
  if (!(SAVING_EVENTS as readonly string[]).includes(name))
    return {
      allowed: false,
      why: `event ${name} (images are saved on ${SAVING_EVENTS.join(', ')} and pull requests from this repository)`,
    };
  if (!ref?.startsWith('refs/heads/'))
    return { allowed: false, why: `event ${name} on ${ref ?? 'an unknown ref'}, not on a branch` };
  return { allowed: true, why: `event ${name} on ${ref}` };
}

export class GitHubImageCache implements ImageCache {
  readonly backend = 'github-actions';
  constructor(
    /** Where the image lives on the runner; save and restore must use this same path. */
    private readonly dir: string,
    private readonly policy: SavePolicy,
    private readonly warn: (message: string) => void,
    private readonly options: CacheOptions = {},
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  async restore(key: string): Promise<RestoreResult> {
    if (!cache.isFeatureAvailable())
      return { hit: false, detail: 'the Actions cache service is not available to this job' };
    const seconds =
      this.options.restoreSeconds ?? secondsFromEnv(this.env, CACHE_TIMEOUT_ENV) ?? DEFAULT_RESTORE_SECONDS;
    const lookupOnly = this.options.lookupOnly === true;
    const got = await restoreGuarded(this.dir, key, [], seconds, { label: 'image cache', lookupOnly });
    switch (got.kind) {
      case 'refused':
        this.warn(`image cache entry ${key} was not restored, building instead: ${got.why}`);
        return { hit: false, detail: `the cache entry was refused: ${got.why}` };
      case 'hit':
        if (got.matchedKey === key)
          return {
            hit: true,
            dir: this.dir,
            detail: lookupOnly
              ? `${key} is in the Actions cache (looked up, not downloaded)`
              : `restored ${key} from the Actions cache`,
          };
        return { hit: false, detail: `no Actions cache entry for ${key}` };
      case 'miss':
        return { hit: false, detail: `no Actions cache entry for ${key}` };
      case 'gave-up':
        this.warn(
          `image cache restore gave up after ${seconds} s (the Actions cache service did not finish in time); building instead`,
        );
        return { hit: false, detail: `restore gave up after ${seconds} s` };
      case 'failed':
        this.warn(`image cache restore failed, building instead: ${got.message}`);
        return { hit: false, detail: `restore failed: ${got.message}` };
    }
  }

  async buildDir(): Promise<string> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
    return this.dir;
  }

  /** A failed or cancelled build leaves nothing in the image directory (a later step could take it for an image). */
  async discard(builtDir: string): Promise<void> {
    await rm(builtDir, { recursive: true, force: true });
  }

  async save(key: string, builtDir: string): Promise<string> {
    if (!this.policy.allowed) {
      this.warn(`not saving the image to the Actions cache: ${this.policy.why}`);
      return builtDir;
    }
    const seconds =
      this.options.saveSeconds ??
      secondsFromEnv(this.env, CACHE_TIMEOUT_ENV) ??
      saveDeadlineSeconds(await treeBytes(this.dir));
    const got = await saveBounded(this.dir, key, seconds, 'image cache');
    if (got.kind === 'saved') this.options.onSaved?.(key);
    else if (got.kind === 'not-saved')
      this.warn(`the image was not saved to the Actions cache (key ${key}); later runs will build it again`);
    else if (got.kind === 'gave-up')
      this.warn(
        `image cache save gave up after ${seconds} s (the Actions cache service did not finish in time); the run goes on with the built image, later runs will build it again`,
      );
    else this.warn(`image cache save failed (the run goes on): ${got.message}`);
    return builtDir;
  }
}

/** How one guarded restore ended (restoreGuarded). */
export type Restored =
  | { kind: 'hit'; matchedKey: string }
  | { kind: 'miss' }
  | { kind: 'refused'; why: string }
  | { kind: 'gave-up' }
  | { kind: 'failed'; message: string };

/**
 * One restoreCache of `dir` under key (else the restore keys' newest prefix match) within `seconds`,
 * the archive checked by the tar guard before tar may unpack it. Nothing of a refused or abandoned
 * restore remains in dir. `label` names the cache in the deadline's message.
 */
export async function restoreGuarded(
  dir: string,
  key: string,
  restoreKeys: string[],
  seconds: number,
  o: { label: string; lookupOnly?: boolean },
): Promise<Restored> {
  // Set when the deadline gives up: the guard then refuses a late extraction into the directory.
  const abandoned = new AbortController();
  // Set when it gives up before any download began: that call can never reach tar.
  const released = new AbortController();
  try {
    const restoreCall = () =>
      cache.restoreCache([dir], key, restoreKeys, { lookupOnly: o.lookupOnly === true });
    // The archive is not trusted: its members are checked before tar may unpack it (tar-guard.ts).
    const { value: matched, refused } = await withDeadline(`${o.label} restore of ${key}`, seconds, () =>
      o.lookupOnly
        ? restoreCall().then((value) => ({ value, refused: undefined }))
        : withTarGuard(dir, restoreCall, { signal: abandoned.signal, release: released.signal }),
    );
    if (refused !== undefined) {
      await rm(dir, { recursive: true, force: true });
      return { kind: 'refused', why: refused };
    }
    return matched ? { kind: 'hit', matchedKey: matched } : { kind: 'miss' };
  } catch (e) {
    if (e instanceof DeadlineExceeded) {
      abandoned.abort();
      if (!e.requests.some((r) => !r.includes('/twirp/'))) released.abort();
      await discardPartialRestore(dir, e);
      return { kind: 'gave-up' };
    }
    return { kind: 'failed', message: (e as Error).message };
  }
}

/**
 * After an abandoned restore, nothing of it may remain in the directory. If the download had started,
 * the library may be about to unpack, or unpacking: stop its tar until the call has ended (its requests
 * fail at once now; bounded anyway), then remove whatever it wrote.
 */
async function discardPartialRestore(dir: string, e: DeadlineExceeded): Promise<void> {
  const reachedStorage = e.requests.some((r) => !r.includes('/twirp/'));
  if (reachedStorage) {
    let ended = false;
    void e.settled.then(() => (ended = true));
    const until = Date.now() + 60_000;
    while (!ended && Date.now() < until) {
      await killCacheTar();
      await Promise.race([e.settled, new Promise((r) => setTimeout(r, 200))]);
    }
    await killCacheTar();
  }
  await rm(dir, { recursive: true, force: true });
}

/** How one bounded save ended: stored, skipped by the library (-1), abandoned, or an error. */
export type Saved =
  { kind: 'saved' } | { kind: 'not-saved' } | { kind: 'gave-up' } | { kind: 'failed'; message: string };

/** One saveCache of `dir` under key within `seconds`; an abandoned save's tar is stopped (it only read). */
export async function saveBounded(dir: string, key: string, seconds: number, label: string): Promise<Saved> {
  try {
    const id = await withDeadline(`${label} save of ${key}`, seconds, () => cache.saveCache([dir], key));
    return id === -1 ? { kind: 'not-saved' } : { kind: 'saved' };
  } catch (e) {
    if (e instanceof DeadlineExceeded) {
      await killCacheTar();
      return { kind: 'gave-up' };
    }
    return { kind: 'failed', message: (e as Error).message };
  }
}

/** Where this job's image lives: in RUNNER_TEMP, outside the workspace (the output directory outside Actions). */
export function imageDir(gh: Pick<GitHubContext, 'runnerTemp'>, outputDir: string): string {
  return join(gh.runnerTemp ?? outputDir, 'itest-image');
}

/** This job's image cache: the image in imageDir, saved only as savePolicy allows. */
export function jobImageCache(
  gh: GitHubContext,
  outputDir: string,
  warn: (message: string) => void,
  options: CacheOptions = {},
): GitHubImageCache {
  return new GitHubImageCache(imageDir(gh, outputDir), savePolicy(gh), warn, options);
}

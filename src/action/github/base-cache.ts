/**
 * The second-level cache (src/image/base-store.ts) on the GitHub Actions cache: mkosi's incremental
 * state under the base key, with a prefix fallback, since a near state (another package list, the same
 * architecture and mkosi) still saves most downloads and mkosi checks its cached trees itself.
 *
 * The Actions cache cannot replace an entry, so each save goes under `<base key>-<run>-<attempt>`, and a
 * restore asks for `<base key>-` first (the newest state of exactly this base), then the prefix (the newest
 * of any base). A state restored exactly is not saved again (it would only add a copy of what is there),
 * unless it broke the build and the build from scratch replaced it: the newer entry then wins the next
 * lookup. Saves only as the image's savePolicy allows, and none above `maxBytes`; GitHub evicts the least
 * recently used entries beyond 10 GB per repository, and nothing here holds a token that may delete one.
 * Every failure is a warning and a fresh state: the build goes on without it.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as cache from '@actions/cache';
import {
  fillState,
  wipeState,
  type BaseSaved,
  type BaseState,
  type BaseStore,
} from '../../image/base-store.ts';
import { secondsFromEnv } from '../../util/deadline.ts';
import { humanBytes, seconds } from '../../util/size.ts';
import { treeBytes } from '../../util/tree-bytes.ts';
import {
  CACHE_TIMEOUT_ENV,
  DEFAULT_RESTORE_SECONDS,
  restoreGuarded,
  saveBounded,
  saveDeadlineSeconds,
  savePolicy,
  type SavePolicy,
} from './actions-cache.ts';
import type { GitHubContext } from './context.ts';
import type { RunConfig } from '../../config/run-config.ts';
import { STATE_ARCHIVE, packState, stateParts, unpackState } from './state-archive.ts';
import { findTar } from './tar-guard.ts';

/** The largest state saved: the image needs its own room in the repository's 10 GB. */
export const DEFAULT_BASE_MAX_BYTES = 5 * 1024 ** 3;

export interface BaseCacheOptions {
  /** Seconds a restore may take (default as for the image: $ITEST_CACHE_TIMEOUT_SECONDS, else 600). */
  restoreSeconds?: number;
  /** Seconds a save may take (default as for the image: 120 s + 1 s per 10 MiB). */
  saveSeconds?: number;
  maxBytes?: number;
  /** Whether mkosi's cached trees go in (state-archive.ts); default: this process runs as root. */
  root?: boolean;
  /** What makes a saved key unique (default: $GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT, else the time). */
  runTag?: string;
}

export class GitHubBaseStore implements BaseStore {
  readonly backend = 'github-actions';
  /** What restore() found: an exact state is not saved again. */
  private restored: { match: BaseState['match']; from?: string } | undefined;

  constructor(
    /** On the runner, outside the workspace; save and restore must use the same path (the cache version hashes it). */
    private readonly root: string,
    private readonly policy: SavePolicy,
    private readonly warn: (message: string) => void,
    private readonly options: BaseCacheOptions = {},
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  private get runsAsRoot(): boolean {
    return this.options.root ?? process.getuid?.() === 0;
  }

  private get state(): string {
    return join(this.root, 'state');
  }
  /** What goes to the cache: base-state.tar alone. */
  private get transfer(): string {
    return join(this.root, 'transfer');
  }

  async restore(key: string, prefix: string): Promise<BaseState> {
    const t0 = performance.now();
    await wipeState(this.state);
    const fresh = (note?: string): BaseState => {
      this.restored = { match: 'fresh' };
      return {
        dir: this.state,
        match: 'fresh',
        bytes: 0,
        seconds: seconds(performance.now() - t0),
        ...(note ? { note } : {}),
      };
    };
    if (!cache.isFeatureAvailable()) return fresh('the Actions cache service is not available to this job');
    const tar = await findTar();
    if (!tar) return fresh('no tar on PATH');
    const limit =
      this.options.restoreSeconds ?? secondsFromEnv(this.env, CACHE_TIMEOUT_ENV) ?? DEFAULT_RESTORE_SECONDS;
    const got = await restoreGuarded(this.transfer, key, [`${key}-`, prefix], limit, {
      label: 'base state cache',
    });
    try {
      if (got.kind === 'miss') return fresh();
      if (got.kind !== 'hit') {
        const why =
          got.kind === 'refused'
            ? `its entry was refused: ${got.why}`
            : got.kind === 'gave-up'
              ? `the restore gave up after ${limit} s`
              : `the restore failed: ${got.message}`;
        this.warn(`base state not restored from the Actions cache, building from scratch: ${why}`);
        return fresh(why);
      }
      const unpacked = await unpackState(tar, this.transfer, this.state, this.runsAsRoot);
      if (unpacked !== undefined) {
        this.warn(`base state ${got.matchedKey} not used, building from scratch: ${unpacked}`);
        await fillState(this.state);
        return fresh(`${got.matchedKey}: ${unpacked}`);
      }
      await fillState(this.state);
      const match = got.matchedKey.startsWith(`${key}-`) ? 'exact' : 'near';
      this.restored = { match, from: got.matchedKey };
      return {
        dir: this.state,
        match,
        from: got.matchedKey,
        bytes: await treeBytes(this.state),
        seconds: seconds(performance.now() - t0),
      };
    } finally {
      await rm(this.transfer, { recursive: true, force: true });
    }
  }

  async wipe(dir: string): Promise<void> {
    await wipeState(dir);
  }

  async save(key: string, o: { rebuilt?: boolean } = {}): Promise<BaseSaved> {
    const t0 = performance.now();
    const skipped = (why: string): BaseSaved => ({ bytes: 0, pruned: [], skipped: why });
    if (!this.policy.allowed) return skipped(this.policy.why);
    if (this.restored?.match === 'exact' && !o.rebuilt)
      return skipped(
        `the Actions cache holds it already (${this.restored.from}); its entries cannot be replaced`,
      );
    const tar = await findTar();
    if (!tar) return skipped('no tar on PATH');
    const root = this.runsAsRoot;
    try {
      const failed = await packState(tar, this.state, this.transfer, root);
      if (failed !== undefined) {
        this.warn(`base state not saved to the Actions cache: ${failed}`);
        return skipped(failed);
      }
      const bytes = (await stat(join(this.transfer, STATE_ARCHIVE))).size;
      const max = this.options.maxBytes ?? DEFAULT_BASE_MAX_BYTES;
      if (bytes > max) {
        const why = `${humanBytes(bytes)} is more than the ${humanBytes(max)} a base state may take of the repository's 10 GB`;
        this.warn(`base state not saved to the Actions cache: ${why}`);
        return skipped(why);
      }
      const tag =
        this.options.runTag ??
        (this.env.GITHUB_RUN_ID
          ? `${this.env.GITHUB_RUN_ID}-${this.env.GITHUB_RUN_ATTEMPT ?? '1'}`
          : `${Date.now()}`);
      const savedKey = `${key}-${tag}`;
      const limit =
        this.options.saveSeconds ?? secondsFromEnv(this.env, CACHE_TIMEOUT_ENV) ?? saveDeadlineSeconds(bytes);
      const got = await saveBounded(this.transfer, savedKey, limit, 'base state cache');
      if (got.kind !== 'saved') {
        const why =
          got.kind === 'not-saved'
            ? `the Actions cache did not take ${savedKey}`
            : got.kind === 'gave-up'
              ? `the save gave up after ${limit} s`
              : `the save failed: ${got.message}`;
        this.warn(`base state not saved to the Actions cache (the run goes on): ${why}`);
        return skipped(why);
      }
      return {
        bytes,
        pruned: [],
        savedKey,
        parts: stateParts(root),
        seconds: seconds(performance.now() - t0),
      };
    } finally {
      await rm(this.transfer, { recursive: true, force: true });
    }
  }
}

/**
 * The engine's base store for this job when the run is incremental (`{}` otherwise): beside the image in
 * RUNNER_TEMP, saved only as the image's policy allows.
 */
export function jobBaseStore(
  gh: GitHubContext,
  run: Pick<RunConfig, 'incremental' | 'outputDir'>,
  warn: (message: string) => void,
  options: BaseCacheOptions = {},
): { baseStore?: GitHubBaseStore } {
  if (!run.incremental) return {};
  return {
    baseStore: new GitHubBaseStore(
      join(gh.runnerTemp ?? run.outputDir, 'itest-base'),
      savePolicy(gh),
      warn,
      options,
    ),
  };
}

/**
 * ImageCache on the GitHub Actions cache (@actions/cache). Exact keys only: another key means another
 * configuration, which must be rebuilt, not approximated. Every cache failure is a warning and the run
 * goes on (restore miss -> build; save failure -> the image is still used). Saves only from trusted events.
 */
import { mkdir, rm } from 'node:fs/promises';
import * as cache from '@actions/cache';
import type { ImageCache, RestoreResult } from './image-cache.ts';

export interface SavePolicy {
  allowed: boolean;
  why: string;
}

/**
 * Whether this event may write the cache: never from pull requests out of forks (their code is
 * untrusted and a poisoned image would be restored by trusted runs), nor from pull_request_target.
 */
export function savePolicy(
  eventName: string | undefined,
  event: Record<string, unknown> | undefined,
): SavePolicy {
  if (eventName === 'pull_request_target')
    return { allowed: false, why: 'pull_request_target runs with untrusted code' };
  if (
    eventName === 'pull_request' ||
    eventName === 'pull_request_review' ||
    eventName === 'pull_request_review_comment'
  ) {
    const pr = event?.pull_request as
      { head?: { repo?: { full_name?: string } }; base?: { repo?: { full_name?: string } } } | undefined;
    const head = pr?.head?.repo?.full_name;
    const base = pr?.base?.repo?.full_name;
    if (!head || !base || head !== base)
      return { allowed: false, why: `pull request from a fork (${head ?? 'unknown'})` };
  }
  return { allowed: true, why: `event ${eventName ?? 'unknown'}` };
}

export class GitHubImageCache implements ImageCache {
  readonly backend = 'github-actions';
  constructor(
    /** Where the image lives on the runner; save and restore must use this same path. */
    private readonly dir: string,
    private readonly policy: SavePolicy,
    private readonly warn: (message: string) => void,
  ) {}

  async restore(key: string): Promise<RestoreResult> {
    if (!cache.isFeatureAvailable())
      return { hit: false, detail: 'the Actions cache service is not available to this job' };
    try {
      const matched = await cache.restoreCache([this.dir], key);
      if (matched === key)
        return { hit: true, dir: this.dir, detail: `restored ${key} from the Actions cache` };
      return { hit: false, detail: `no Actions cache entry for ${key}` };
    } catch (e) {
      this.warn(`image cache restore failed, building instead: ${(e as Error).message}`);
      return { hit: false, detail: `restore failed: ${(e as Error).message}` };
    }
  }

  async buildDir(): Promise<string> {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
    return this.dir;
  }

  async save(key: string, builtDir: string): Promise<string> {
    if (!this.policy.allowed) {
      this.warn(`not saving the image to the Actions cache: ${this.policy.why}`);
      return builtDir;
    }
    try {
      const id = await cache.saveCache([this.dir], key);
      if (id === -1)
        this.warn(
          `the image was not saved to the Actions cache (key ${key}); later runs will build it again`,
        );
    } catch (e) {
      this.warn(`image cache save failed (the run goes on): ${(e as Error).message}`);
    }
    return builtDir;
  }
}

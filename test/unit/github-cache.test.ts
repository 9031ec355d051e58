/**
 * The real @actions/cache against local stand-ins of the Actions services (Twirp stand-in + Azurite):
 * save, restore hit, restore miss, and injected failures that must not fail the run.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActionsServices } from '../helpers/actions-services.ts';
import { GitHubImageCache, savePolicy } from '../../src/image/github-cache.ts';
import { ensureImage } from '../../src/image/ensure-image.ts';

const services = new ActionsServices();
let workspace: string;
const saved: NodeJS.ProcessEnv = {};

before(async () => {
  await services.start();
  workspace = await mkdtemp(join(tmpdir(), 'itest-ws-'));
  const env = { ...services.env(), GITHUB_WORKSPACE: workspace, RUNNER_TEMP: workspace };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  delete process.env.GITHUB_SERVER_URL;
  delete process.env.ACTIONS_CACHE_MODE;
});

after(async () => {
  await services.stop();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('GitHub Actions cache backend (real @actions/cache, local services)', () => {
  it('misses, builds, saves, then restores the same bytes on a hit', async () => {
    const dir = join(workspace, 'image');
    const warnings: string[] = [];
    const cache = new GitHubImageCache(dir, { allowed: true, why: 'push' }, (w) => warnings.push(w));
    const build = ['/bin/sh', '-c', 'head -c 300000 /dev/urandom > "$4/itest-demo.raw"', 'sh'];
    const log = join(workspace, 'build.log');
    const first = await ensureImage({
      cache,
      key: 'itest-image-test-1',
      mkosi: build,
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
    });
    assert.equal(first.cache, 'miss');
    assert.deepEqual(warnings, []);
    const bytes = await readFile(join(dir, 'itest-demo.raw'));
    assert.ok(
      services.calls.includes('twirp CreateCacheEntry') &&
        services.calls.includes('twirp FinalizeCacheEntryUpload'),
    );
    await rm(dir, { recursive: true, force: true });
    const second = await ensureImage({
      cache,
      key: 'itest-image-test-1',
      mkosi: ['/bin/false'],
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
    });
    assert.equal(second.cache, 'hit');
    assert.deepEqual(await readFile(join(dir, 'itest-demo.raw')), bytes, 'restored image is byte-identical');
    const other = await cache.restore('itest-image-test-other');
    assert.equal(other.hit, false);
  });

  it('a control-plane HTTP 500 on restore is a miss with the run going on', async () => {
    const cache = new GitHubImageCache(join(workspace, 'image2'), { allowed: true, why: 'push' }, () => {});
    services.fault = 'twirp-500';
    try {
      const r = await cache.restore('itest-image-test-1');
      assert.equal(r.hit, false);
    } finally {
      services.fault = 'none';
    }
  });

  it('a storage HTTP 500 on save is a warning, not a failure; the image stays usable', async () => {
    const dir = join(workspace, 'image3');
    const warnings: string[] = [];
    const cache = new GitHubImageCache(dir, { allowed: true, why: 'push' }, (w) => warnings.push(w));
    await cache.buildDir();
    await writeFile(join(dir, 'x.raw'), 'image');
    services.fault = 'blob-500';
    try {
      const out = await cache.save('itest-image-test-500', dir);
      assert.equal(out, dir);
      assert.equal(await readFile(join(dir, 'x.raw'), 'utf8'), 'image');
      assert.match(warnings.join('\n'), /not saved to the Actions cache|save failed/);
    } finally {
      services.fault = 'none';
    }
  });

  it('never saves from fork pull requests or pull_request_target', async () => {
    assert.equal(savePolicy('push', {}).allowed, true);
    assert.equal(
      savePolicy('pull_request', {
        pull_request: { head: { repo: { full_name: 'a/b' } }, base: { repo: { full_name: 'a/b' } } },
      }).allowed,
      true,
    );
    const fork = savePolicy('pull_request', {
      pull_request: { head: { repo: { full_name: 'evil/b' } }, base: { repo: { full_name: 'a/b' } } },
    });
    assert.equal(fork.allowed, false);
    assert.match(fork.why, /fork \(evil\/b\)/);
    assert.equal(savePolicy('pull_request_target', {}).allowed, false);
    const warnings: string[] = [];
    const before = services.calls.length;
    const cache = new GitHubImageCache(join(workspace, 'image4'), fork, (w) => warnings.push(w));
    await cache.save('itest-image-fork', await cache.buildDir());
    assert.equal(services.calls.length, before, 'no request at all');
    assert.match(warnings[0]!, /not saving .* fork/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalImageCache } from '../../src/image/local-cache.ts';
import { ensureImage } from '../../src/image/ensure-image.ts';
import { UserError } from '../../src/util/errors.ts';

describe('local image cache', () => {
  it('misses, saves atomically, hits, and keeps only the newest images no run uses', async () => {
    const root = await mkdtemp(join(tmpdir(), 'itest-cache-'));
    const cache = new LocalImageCache(root, 2);
    assert.equal((await cache.restore('k1')).hit, false);
    for (const k of ['k1', 'k2', 'k3']) {
      const dir = await cache.buildDir(k);
      await writeFile(join(dir, 'image.raw'), k);
      const saved = await cache.save(k, dir);
      assert.equal(await readFile(join(saved, 'image.raw'), 'utf8'), k);
      // This process is done with it (a run's use ends with its process, or here).
      await cache.release(k);
      await new Promise((r) => setTimeout(r, 20));
    }
    const hit = await cache.restore('k3');
    assert.equal(hit.hit, true);
    assert.equal(await readFile(join(hit.dir!, 'image.raw'), 'utf8'), 'k3');
    assert.deepEqual((await readdir(join(root, 'images'))).sort(), ['k2', 'k3']);
  });

  it('a directory without the completion marker is a miss', async () => {
    const root = await mkdtemp(join(tmpdir(), 'itest-cache-'));
    await mkdir(join(root, 'images', 'half'), { recursive: true });
    assert.equal((await new LocalImageCache(root).restore('half')).hit, false);
  });

  it('ensureImage builds on a miss with the real process adapter and reports a failed build with its log tail', async () => {
    const root = await mkdtemp(join(tmpdir(), 'itest-cache-'));
    const cache = new LocalImageCache(root);
    // A stand-in for mkosi: /bin/sh writes an "image" into --output-dir (argv[4] here).
    const fakeMkosi = ['/bin/sh', '-c', 'echo building; echo image > "$4/img.raw"', 'sh'];
    const log = join(root, 'build.log');
    const first = await ensureImage({
      cache,
      key: 'k',
      mkosi: fakeMkosi,
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
    });
    assert.equal(first.cache, 'miss');
    assert.equal(await readFile(join(first.dir, 'img.raw'), 'utf8'), 'image\n');
    assert.match(await readFile(log, 'utf8'), /building/);
    const second = await ensureImage({
      cache,
      key: 'k',
      mkosi: ['/bin/false'],
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
    });
    assert.equal(second.cache, 'hit');
    await assert.rejects(
      ensureImage({
        cache,
        key: 'other',
        mkosi: ['/bin/sh', '-c', 'echo "‣ boom: no space left"; exit 1', 'sh'],
        configDir: '/cfg',
        buildLog: log,
        env: process.env,
      }),
      (e: unknown) =>
        e instanceof UserError &&
        e.exitCode === 4 &&
        /image build failed \(mkosi exit 1\)/.test(e.message) &&
        /boom: no space left/.test(e.message),
    );
  });
});

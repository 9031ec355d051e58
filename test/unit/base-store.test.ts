import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalImageCache } from '../../src/image/local-cache.ts';
import { LocalBaseStore, incrementalArgs } from '../../src/image/base-store.ts';
import { buildArgv, ensureImage } from '../../src/image/ensure-image.ts';

// A stand-in for mkosi's incremental build (real mkosi builds are too slow for a unit test; the real
// one is in the e2e and the bench): with a cached tree in --cache-dir it says so and installs nothing,
// without one it "installs packages" into --package-cache-dir and caches the tree; a state marked
// corrupt fails the build, as a broken cached tree would.
const STANDIN = [
  '/bin/sh',
  '-c',
  [
    'for a in "$@"; do case "$a" in --output-dir) next=out;; --cache-dir=*) c="${a#*=}";; --package-cache-dir=*) p="${a#*=}";; *) [ "$next" = out ] && o="$a"; next=;; esac; done',
    '[ -e "$c/corrupt" ] && { echo "‣ cached tree is broken"; exit 1; }',
    'if [ -e "$c/tree" ]; then echo "‣ Reusing cached tree"; else echo "‣ Installing packages"; echo pkgs > "$p/base.deb"; echo tree > "$c/tree"; fi',
    'echo image > "$o/img.raw"',
  ].join('\n'),
  'mkosi',
];
const PREFIX = 'itest-image-base-x86_64-mkosi24.3-';
const baseKey = (n: string) => `${PREFIX}${n.padStart(32, '0')}`;

describe('incremental builds from the base state (local)', () => {
  it('mkosi gets the incremental arguments before the verb, in spellings mkosi 24 to 27 take', () => {
    assert.deepEqual(buildArgv(['mkosi'], '/cfg', '/out', incrementalArgs('/b')), [
      'mkosi',
      '--directory',
      '/cfg',
      '--output-dir',
      '/out',
      '--force',
      '--incremental=yes',
      '--cache-dir=/b/cache',
      '--package-cache-dir=/b/packages',
      '--build-dir=/b/build',
      'build',
    ]);
  });

  it('a miss of the image key with the same base key reuses the state; a near match is taken over', async () => {
    const root = await mkdtemp(join(tmpdir(), 'itest-base-'));
    const cache = new LocalImageCache(root);
    const store = new LocalBaseStore(join(root, 'base'));
    const log = join(root, 'build.log');
    const build = (key: string, base: string) =>
      ensureImage({
        cache,
        key,
        mkosi: STANDIN,
        configDir: '/cfg',
        buildLog: log,
        env: process.env,
        base: { store, key: base, prefix: PREFIX },
      });
    const cold = await build('image-1', baseKey('a'));
    assert.equal(cold.base?.match, 'fresh');
    assert.match(await readFile(log, 'utf8'), /Installing packages/);
    assert.ok((cold.base?.savedBytes ?? 0) > 0, 'the state was kept');

    // One source file changed: another image key, the same base key.
    const warm = await build('image-2', baseKey('a'));
    assert.equal(warm.base?.match, 'exact');
    const text = await readFile(log, 'utf8');
    assert.match(text, /Reusing cached tree/);
    assert.doesNotMatch(text, /Installing packages/);

    // A package added: a new base key; the old state is the nearest and is taken over.
    const near = await build('image-3', baseKey('b'));
    assert.equal(near.base?.match, 'near');
    assert.equal(near.base?.from, baseKey('a'));
    assert.deepEqual(await readdir(join(root, 'base')), [baseKey('b')]);
    assert.equal(await readFile(join(root, 'base', baseKey('b'), 'packages/base.deb'), 'utf8'), 'pkgs\n');
  });

  it('a build that fails from a restored state is retried once from scratch, and says so', async () => {
    const root = await mkdtemp(join(tmpdir(), 'itest-base-'));
    const store = new LocalBaseStore(join(root, 'base'));
    const state = await store.restore(baseKey('a'), PREFIX);
    await writeFile(join(state.dir, 'cache/corrupt'), '');
    const log = join(root, 'build.log');
    const got = await ensureImage({
      cache: new LocalImageCache(root),
      key: 'image-1',
      mkosi: STANDIN,
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
      base: { store, key: baseKey('a'), prefix: PREFIX },
    });
    assert.equal(got.base?.retriedFromScratch, true);
    const text = await readFile(log, 'utf8');
    assert.match(text, /cached tree is broken/);
    assert.match(
      text,
      /itest: the incremental build failed \(mkosi exit 1\) from the exact base state .*; retrying once from scratch/,
    );
    assert.match(text, /Installing packages/);
  });

  it('keeps the two newest states of a prefix and stays under its byte bound', async () => {
    const root = await mkdtemp(join(tmpdir(), 'itest-base-'));
    const store = new LocalBaseStore(join(root, 'base'), 2, 10_000);
    for (const n of ['a', 'b', 'c']) {
      // Three bases of one prefix, each kept after its build.
      const dir = join(root, 'base', baseKey(n));
      await mkdir(join(dir, 'packages'), { recursive: true });
      await writeFile(join(dir, 'packages/p.deb'), 'x'.repeat(4000));
      const { pruned } = await store.save(baseKey(n));
      if (n === 'c') assert.deepEqual(pruned, [baseKey('a')]);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual((await readdir(join(root, 'base'))).sort(), [baseKey('b'), baseKey('c')]);
    const big = new LocalBaseStore(join(root, 'base'), 5, 5_000);
    const { pruned } = await big.save(baseKey('c'));
    assert.deepEqual(
      pruned,
      [baseKey('b')],
      'over the byte bound: the oldest goes, never the one just saved',
    );
  });
});

/**
 * The second-level cache in the Actions cache (src/action/github/base-cache.ts): the real @actions/cache
 * against the local stand-ins (Twirp stand-in + Azurite), the state packed and unpacked by the real GNU
 * tar. Each "job" is a new store on the same runner path (the cache version hashes it), emptied first.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cache from '@actions/cache';
import { ActionsServices } from '../helpers/actions-services.ts';
import { GitHubBaseStore, type BaseCacheOptions } from '../../src/action/github/base-cache.ts';
import { STATE_ARCHIVE, packArgv, stateParts, unpackArgv } from '../../src/action/github/state-archive.ts';
import { baseState } from '../../src/action/github/summary.ts';
import { ensureImage } from '../../src/image/ensure-image.ts';

const services = new ActionsServices();
let workspace: string;
let runner: string;
let restoreEnv = () => {};
const PREFIX = 'itest-base-x86_64-mkosi24.3-';
const KEY_A = `${PREFIX}${'a'.repeat(32)}`;
const KEY_B = `${PREFIX}${'b'.repeat(32)}`;
const ROOT = process.getuid?.() === 0;
const SETCAP = spawnSync('setcap', ['-h']).error === undefined;

before(async () => {
  await services.start();
  workspace = await mkdtemp(join(tmpdir(), 'itest-base-ws-'));
  runner = join(workspace, 'runner-temp');
  restoreEnv = services.useInProcess({ GITHUB_WORKSPACE: workspace, RUNNER_TEMP: runner });
});

after(async () => {
  await services.stop();
  restoreEnv();
  await rm(workspace, { recursive: true, force: true });
});

/** A new job's store (the runner path emptied, as on a fresh runner). */
async function job(o: BaseCacheOptions & { trusted?: boolean } = {}) {
  await rm(join(runner, 'itest-base'), { recursive: true, force: true });
  const warnings: string[] = [];
  const policy =
    o.trusted === false
      ? { allowed: false, why: 'pull request from a fork (evil/x)' }
      : { allowed: true, why: 'push' };
  const store = new GitHubBaseStore(join(runner, 'itest-base'), policy, (w) => warnings.push(w), {
    runTag: 'run1',
    ...o,
  });
  return { store, warnings };
}

/** What mkosi leaves in a state: a tree with an owner, a mode, an absolute link, a file capability; packages; a build dir. */
async function fillState(dir: string, mark: string): Promise<void> {
  const tree = join(dir, 'cache', 'image.cache');
  await mkdir(join(tree, 'usr/bin'), { recursive: true });
  await mkdir(join(tree, 'etc/alternatives'), { recursive: true });
  await writeFile(join(tree, 'usr/bin/ping'), `ping ${mark}`, { mode: 0o4750 });
  await symlink('/usr/bin/ping', join(tree, 'etc/alternatives/ping'));
  await writeFile(join(dir, 'cache', 'image.cache.json'), JSON.stringify({ mark }));
  // chown clears the setuid bit and file capabilities: the mode and the capability after it.
  if (ROOT) await chown(join(tree, 'usr/bin/ping'), 4711, 4712);
  await chmod(join(tree, 'usr/bin/ping'), 0o4750);
  if (ROOT && SETCAP)
    assert.equal(spawnSync('setcap', ['cap_net_raw+ep', join(tree, 'usr/bin/ping')]).status, 0);
  await writeFile(join(dir, 'packages', `pkg-${mark}.deb`), `deb ${mark}`);
  await writeFile(join(dir, 'build', 'hello.o'), `object ${mark}`);
}

describe('the base state in the Actions cache (real @actions/cache and tar, local services)', () => {
  it("tar's arguments keep what mkosi's trees carry; the trees go in only as root", () => {
    assert.deepEqual(packArgv('/s', '/t/base-state.tar', ['cache', 'packages']), [
      '-c',
      '--xattrs',
      '--xattrs-include=*',
      '--acls',
      '--numeric-owner',
      '--sparse',
      '-f',
      '/t/base-state.tar',
      '-C',
      '/s',
      '--',
      'cache',
      'packages',
    ]);
    assert.deepEqual(unpackArgv('/t/a.tar', '/s', false).slice(6, 8), ['--anchored', '--exclude=cache']);
    assert.deepEqual(unpackArgv('/t/a.tar', '/s', true), [
      '-x',
      '--xattrs',
      '--xattrs-include=*',
      '--acls',
      '--numeric-owner',
      '--preserve-permissions',
      '-f',
      '/t/a.tar',
      '-C',
      '/s',
    ]);
    assert.deepEqual(stateParts(true), ['cache', 'packages', 'build']);
    assert.deepEqual(stateParts(false), ['packages', 'build']);
  });

  it('fresh, saved under a run-unique key; then exact (not saved again), near by the prefix, and the newest wins after a rebuild', async () => {
    // Job 1: nothing in the cache.
    const first = await job();
    let store = first.store;
    const s1 = await store.restore(KEY_A, PREFIX);
    assert.equal(s1.match, 'fresh');
    await fillState(s1.dir, 'one');
    const k1 = await store.save(KEY_A);
    assert.equal(k1.skipped, undefined, JSON.stringify(k1));
    assert.equal(k1.savedKey, `${KEY_A}-run1`);
    assert.deepEqual(k1.parts, stateParts(ROOT));
    assert.ok(k1.bytes > 0);
    assert.deepEqual(first.warnings, []);
    assert.equal(
      existsSync(join(runner, 'itest-base', 'transfer')),
      false,
      'the archive is gone after the save',
    );

    // Job 2, the same base: exactly that state, every attribute back; not saved again.
    ({ store } = await job());
    const s2 = await store.restore(KEY_A, PREFIX);
    assert.equal(s2.match, 'exact');
    assert.equal(s2.from, `${KEY_A}-run1`);
    assert.equal(await readFile(join(s2.dir, 'packages', 'pkg-one.deb'), 'utf8'), 'deb one');
    assert.equal(await readFile(join(s2.dir, 'build', 'hello.o'), 'utf8'), 'object one');
    const ping = join(s2.dir, 'cache', 'image.cache', 'usr/bin/ping');
    if (ROOT) {
      const st = await lstat(ping);
      assert.equal(st.mode & 0o7777, 0o4750, 'mode with the setuid bit');
      assert.deepEqual([st.uid, st.gid], [4711, 4712], 'numeric owner');
      assert.equal(
        await readlink(join(s2.dir, 'cache', 'image.cache', 'etc/alternatives/ping')),
        '/usr/bin/ping',
      );
      if (SETCAP)
        assert.match(
          spawnSync('getcap', [ping], { encoding: 'utf8' }).stdout,
          /cap_net_raw[=+]ep/,
          'the file capability (an xattr)',
        );
    } else assert.equal(existsSync(ping), false, "not root: mkosi's trees stay out");
    const k2 = await store.save(KEY_A);
    assert.match(k2.skipped ?? '', /holds it already \(.*-run1\); its entries cannot be replaced/);

    // The same entry in a job not running as root: packages and build directory, never mkosi's trees
    // (they would come out with this user's owners).
    if (ROOT) {
      ({ store } = await job({ root: false }));
      const user = await store.restore(KEY_A, PREFIX);
      assert.equal(user.match, 'exact');
      assert.equal(await readFile(join(user.dir, 'packages', 'pkg-one.deb'), 'utf8'), 'deb one');
      assert.equal(
        existsSync(join(user.dir, 'cache', 'image.cache')),
        false,
        "mkosi's trees left in the archive",
      );
    }

    // Job 3, another package list (base key B, same prefix): the near state of A.
    ({ store } = await job());
    const s3 = await store.restore(KEY_B, PREFIX);
    assert.equal(s3.match, 'near');
    assert.equal(s3.from, `${KEY_A}-run1`);
    assert.equal((await store.save(KEY_B)).savedKey, `${KEY_B}-run1`);

    // Job 4: A again, its build from the state failed, the one from scratch is saved as the newest A.
    ({ store } = await job({ runTag: 'run2' }));
    const s4 = await store.restore(KEY_A, PREFIX);
    assert.equal(s4.match, 'exact');
    await store.wipe(s4.dir);
    await fillState(s4.dir, 'two');
    assert.equal((await store.save(KEY_A, { rebuilt: true })).savedKey, `${KEY_A}-run2`);
    ({ store } = await job());
    const s5 = await store.restore(KEY_A, PREFIX);
    assert.equal(s5.from, `${KEY_A}-run2`, 'the newest state of the base wins');
    assert.equal(await readFile(join(s5.dir, 'packages', 'pkg-two.deb'), 'utf8'), 'deb two');
    assert.equal(existsSync(join(s5.dir, 'packages', 'pkg-one.deb')), false, 'nothing of the older state');
  });

  it('never saved from an untrusted event, nor above the size bound; each says why', async () => {
    const creates = () => services.calls.filter((c) => c === 'twirp CreateCacheEntry').length;
    let { store } = await job({ trusted: false });
    await fillState((await store.restore(`${PREFIX}${'c'.repeat(32)}`, `${PREFIX}none-`)).dir, 'c');
    const before = creates();
    assert.deepEqual(await store.save(`${PREFIX}${'c'.repeat(32)}`), {
      bytes: 0,
      pruned: [],
      skipped: 'pull request from a fork (evil/x)',
    });
    const big0 = await job({ maxBytes: 10 });
    store = big0.store;
    const warnings = big0.warnings;
    await fillState((await store.restore(`${PREFIX}${'d'.repeat(32)}`, `${PREFIX}none-`)).dir, 'd');
    const big = await store.save(`${PREFIX}${'d'.repeat(32)}`);
    assert.match(big.skipped ?? '', /is more than the 10 B a base state may take of the repository's 10 GB/);
    assert.match(warnings.join('\n'), /base state not saved/);
    assert.equal(creates(), before, 'no cache entry was even reserved');
  });

  it('ensureImage with the Actions backend: the results carry where the state came from and where it went; the summary says so', async () => {
    const { store } = await job({ runTag: 'img' });
    // A stand-in for mkosi: the image, and a package in the package cache it was given.
    const build = [
      '/bin/sh',
      '-c',
      'for a; do case "$a" in --package-cache-dir=*) echo deb > "${a#*=}/p.deb";; esac; done; echo img > "$4/image.raw"',
      'sh',
    ];
    const dir = join(workspace, 'img');
    const imageCache = {
      backend: 'test',
      restore: async () => ({ hit: false, detail: 'miss' }),
      buildDir: async () => (await mkdir(dir, { recursive: true }), dir),
      save: async (_k: string, d: string) => d,
    };
    const key = `${PREFIX}${'f'.repeat(32)}`;
    const got = await ensureImage({
      cache: imageCache,
      key: 'itest-image-x',
      mkosi: build,
      configDir: '/cfg',
      buildLog: join(workspace, 'img-build.log'),
      env: process.env,
      base: { store, key, prefix: PREFIX },
    });
    assert.equal(got.base?.backend, 'github-actions');
    assert.equal(got.base?.match, 'near', 'the newest state of the prefix');
    assert.equal(got.base?.savedKey, `${key}-img`);
    assert.ok((got.base?.savedBytes ?? 0) > 0);
    assert.deepEqual(got.base?.savedParts, stateParts(ROOT));
    const cell = baseState(got.base!);
    assert.match(
      cell,
      /^restored `itest-base-x86_64-mkosi24\.3-.*` \(a near base, .* in [\d.]+ s\) · saved `.*-img` \(/,
    );
    assert.match(
      baseState({
        key,
        backend: 'github-actions',
        match: 'fresh',
        restoredBytes: 0,
        notSaved: 'event workflow_run (images are saved on push)',
      }),
      /^fresh \(nothing to start from\) · not saved: event workflow\\_run \(images are saved on push\)$/,
    );
  });
  it('an entry whose archive writes through its own symbolic link is refused: a fresh state, nothing outside', async () => {
    // Planted the way anything holding the job's cache token could: a base-state.tar of its own making.
    const evil = `${PREFIX}${'e'.repeat(32)}`;
    const transfer = join(runner, 'itest-base', 'transfer');
    const outside = await mkdtemp(join(tmpdir(), 'itest-base-outside-'));
    const src = await mkdtemp(join(tmpdir(), 'itest-base-evil-'));
    await mkdir(join(src, 'cache'));
    await symlink(outside, join(src, 'cache', 'l'));
    await writeFile(join(src, 'x'), 'written outside');
    await rm(join(runner, 'itest-base'), { recursive: true, force: true });
    await mkdir(transfer, { recursive: true });
    const archive = join(transfer, STATE_ARCHIVE);
    assert.equal(spawnSync('tar', ['-cf', archive, '-C', src, 'cache/l']).status, 0);
    assert.equal(
      spawnSync('tar', ['-rf', archive, '-C', src, '--transform', 's|^x$|cache/l/x|', 'x']).status,
      0,
    );
    assert.notEqual(await cache.saveCache([transfer], `${evil}-planted`), -1);

    const { store, warnings } = await job();
    const s = await store.restore(evil, PREFIX);
    assert.equal(s.match, 'fresh');
    assert.match(
      s.note ?? '',
      /refused: member "cache\/l\/x" is written through the symbolic link "cache\/l"/,
    );
    assert.match(warnings.join('\n'), /not used, building from scratch/);
    assert.equal(existsSync(join(outside, 'x')), false, 'nothing was written outside the state');
    assert.equal(existsSync(join(s.dir, 'cache', 'l')), false, 'no half state is used');
    await rm(outside, { recursive: true, force: true });
    await rm(src, { recursive: true, force: true });
  });
});

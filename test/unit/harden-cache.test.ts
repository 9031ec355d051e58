/**
 * Issue 12, items 4 and 5: the image build under a cancel, and the local image cache under several runs
 * on one machine at once (the README's by-hand sharding). Real processes throughout: the "mkosi" builds are
 * /bin/sh scripts started through the real process adapter, and the concurrent runs are separate node
 * processes working on one cache directory.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { buildRunConfig } from '../../src/config/run-config.ts';
import { runEngine } from '../../src/engine/run.ts';
import type { Ui } from '../../src/engine/ui.ts';
import { ensureImage, ImageCancelled } from '../../src/image/ensure-image.ts';
import { LocalImageCache } from '../../src/image/local-cache.ts';
import { listProcesses } from '../../src/util/process.ts';
import { UserError } from '../../src/util/errors.ts';

const CACHE_MODULE = new URL('../../src/image/local-cache.ts', import.meta.url).pathname;
const DEMO = new URL('../../examples/demo', import.meta.url).pathname;

/**
 * One run's use of the cache, in its own node process. Commands (argv[1], JSON):
 *   save  {root, key | keys, rounds, keep}: build (a file) and save each key `rounds` times; checks each saved image
 *   hold  {root, key}: restore and keep using the image until stdin closes
 *   build {root, key}: take a build directory and exit without finishing (a run that died mid-build)
 *   churn {root, keys, rounds}: restore each key in turn, check its image stays whole while held, release
 * Prints `ready <dir>` when holding, and one JSON report line at the end.
 */
const WORKER = `
const { LocalImageCache } = await import(${JSON.stringify(CACHE_MODULE)});
const { existsSync, readFileSync, writeFileSync } = await import('node:fs');
const { join } = await import('node:path');
const [cmd, raw] = process.argv.slice(1);
const o = JSON.parse(raw);
const cache = new LocalImageCache(o.root, o.keep ?? 3);
const errors = [];
const whole = (dir) => existsSync(join(dir, 'image.raw')) && existsSync(join(dir, 'itest-image.json'));
if (cmd === 'save') {
  for (let i = 0; i < o.rounds; i++) {
    for (const key of o.keys ?? [o.key]) {
      try {
        const dir = await cache.buildDir(key);
        writeFileSync(join(dir, 'image.raw'), process.pid + '/' + i);
        const saved = await cache.save(key, dir);
        if (!whole(saved)) errors.push('round ' + i + ': saved image ' + saved + ' is not whole');
      } catch (e) {
        errors.push('round ' + i + ': ' + (e.code ?? '') + ' ' + e.message);
      }
    }
  }
} else if (cmd === 'hold') {
  const r = await cache.restore(o.key);
  if (!r.hit) errors.push('no hit: ' + r.detail);
  else console.log('ready ' + r.dir);
  process.stdin.resume();
  await new Promise((res) => process.stdin.on('end', res));
} else if (cmd === 'build') {
  const dir = await cache.buildDir(o.key);
  writeFileSync(join(dir, 'partial.raw'), 'half an image');
  console.log('ready ' + dir);
  process.exit(0);
} else if (cmd === 'churn') {
  let hits = 0;
  for (let i = 0; i < o.rounds; i++) {
    for (const key of o.keys) {
      const r = await cache.restore(key);
      if (!r.hit) continue;
      hits++;
      const content = readFileSync(join(r.dir, 'image.raw'), 'utf8');
      await new Promise((res) => setTimeout(res, 2));
      if (!existsSync(join(r.dir, 'image.raw')) || readFileSync(join(r.dir, 'image.raw'), 'utf8') !== content)
        errors.push('round ' + i + ': ' + key + ' changed or vanished while in use');
      await cache.release?.(key);
    }
  }
  console.log(JSON.stringify({ errors, hits }));
  process.exit(0);
}
console.log(JSON.stringify({ errors }));
`;

interface Worker {
  child: ChildProcess;
  /** The directory of a `ready <dir>` line. */
  ready: Promise<string>;
  /** The final JSON line. */
  report: Promise<{ errors: string[]; hits?: number }>;
}

/** Every worker started, so that a failing test leaves none behind. */
const workers = new Set<ChildProcess>();
afterEach(() => {
  for (const c of workers) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  workers.clear();
});

function worker(cmd: string, args: object): Worker {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', WORKER, cmd, JSON.stringify(args)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  workers.add(child);
  const lines = createInterface({ input: child.stdout! });
  let last = '';
  const ready = new Promise<string>((resolve, reject) => {
    lines.on('line', (l) => {
      if (l.startsWith('ready ')) resolve(l.slice(6));
      else last = l;
    });
    child.on('exit', () => reject(new Error(`${cmd} worker exited before it was ready`)));
  });
  ready.catch(() => {});
  const report = once(child, 'exit').then(() => JSON.parse(last || '{"errors":["no report"]}'));
  return { child, ready, report };
}

const tmp = (p: string) => mkdtemp(join(tmpdir(), p));

async function alive(pid: number): Promise<boolean> {
  return (await listProcesses()).some((p) => p.pid === pid);
}

/** The PIDs a build stand-in printed (`building <pid>`, `child <pid>`), once it has printed both. */
async function buildPids(log: string): Promise<number[]> {
  for (let i = 0; i < 100; i++) {
    const text = await readFile(log, 'utf8').catch(() => '');
    const pids = [/building (\d+)/, /child (\d+)/].map((re) => Number(re.exec(text)?.[1] ?? 0));
    if (pids.every((p) => p > 0)) return pids;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the build stand-in never started: ${await readFile(log, 'utf8').catch(() => '')}`);
}

describe('image build under a cancel (issue 12 item 4)', () => {
  // The build prints its PID and its child's, then works for 6 s before it writes the image.
  const slowBuild = [
    '/bin/sh',
    '-c',
    'echo "building $$"; sleep 6 & echo "child $!"; wait; echo image > "$4/img.raw"',
    'sh',
  ];

  it('a cancel during the build stops its whole process tree at once, saves nothing and keeps the log', async () => {
    const root = await tmp('itest-cancel-');
    const cache = new LocalImageCache(root);
    const log = join(root, 'image-build.log');
    const ac = new AbortController();
    let started = 0;
    const run = ensureImage({
      cache,
      key: 'k',
      mkosi: slowBuild,
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
      signal: ac.signal,
      onBuildStart: () => (started = performance.now()),
    });
    // Cancel once the build and its child run.
    const pids = await buildPids(log);
    assert.ok(started > 0);
    const t0 = performance.now();
    ac.abort('cancelled by SIGINT');
    await assert.rejects(
      run,
      (e: unknown) =>
        e instanceof UserError &&
        e.exitCode === 130 &&
        /image build cancelled by SIGINT after/.test(e.message),
    );
    const took = (performance.now() - t0) / 1000;
    assert.ok(took < 2, `the cancel took ${took.toFixed(1)} s`);
    for (const pid of pids) assert.equal(await alive(pid), false, `build process ${pid} outlived the cancel`);
    assert.equal((await cache.restore('k')).hit, false, 'nothing saved');
    assert.deepEqual(await readdir(join(root, 'images')).catch(() => []), []);
    assert.deepEqual(await readdir(join(root, 'build')), [], 'the build directory is gone');
    const kept = await readFile(log, 'utf8');
    assert.match(kept, /^building \d+\nchild \d+\n/, 'the build log is kept');
    assert.match(kept, /itest: build cancelled by SIGINT after [\d.]+ s; nothing was saved/);
  });

  it("the engine hands the run's cancel to the build (runEngine, a mkosi stand-in)", async () => {
    const dir = await tmp('itest-engine-cancel-');
    const mkosi = join(dir, 'mkosi');
    await writeFile(
      mkosi,
      '#!/bin/sh\ncase " $* " in *" --version "*) echo "mkosi 25.3"; exit 0;; esac\n' +
        'echo "building $$"; sleep 30 & echo "child $!"; wait\n',
      { mode: 0o755 },
    );
    const out = join(dir, 'out');
    const cache = join(dir, 'cache');
    const cfg = buildRunConfig(
      { config: DEMO, mkosi, output: out, cacheDir: cache, kvm: 'no' },
      { door: 'cli', cwd: dir, env: process.env, invokedAs: 'itest' },
    );
    const quiet = () => {};
    const ui: Ui = { info: quiet, warn: quiet, planned: quiet, testStart: quiet, testEnd: quiet };
    const ac = new AbortController();
    const run = runEngine(cfg, ui, ac.signal);
    run.catch(() => {});
    const pids = await buildPids(join(out, 'image-build.log'));
    ac.abort('SIGTERM');
    await assert.rejects(
      run,
      (e: unknown) => e instanceof ImageCancelled && /cancelled by SIGTERM/.test(e.message),
    );
    for (const pid of pids) assert.equal(await alive(pid), false, `build process ${pid} outlived the cancel`);
    assert.deepEqual(await readdir(join(cache, 'images')).catch(() => []), []);
    assert.deepEqual(await readdir(join(cache, 'build')), []);
  });

  it('a build that exits 0 on its cancel is still not saved', async () => {
    const root = await tmp('itest-cancel-');
    const cache = new LocalImageCache(root);
    const log = join(root, 'image-build.log');
    const ac = new AbortController();
    // mkosi "finishing" when told to stop: an image written on SIGTERM must not be taken for a build.
    const build = [
      '/bin/sh',
      '-c',
      `trap 'echo image > "$4/img.raw"; exit 0' TERM; echo up; sleep 6 & wait`,
      'sh',
    ];
    const run = ensureImage({
      cache,
      key: 'k',
      mkosi: build,
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
      signal: ac.signal,
    });
    for (let i = 0; i < 100 && !(await readFile(log, 'utf8').catch(() => '')).includes('up'); i++)
      await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    await assert.rejects(run, /image build cancelled/);
    assert.equal((await cache.restore('k')).hit, false);
    assert.deepEqual(await readdir(join(root, 'build')), []);
  });

  it('a cancel before the build starts builds nothing', async () => {
    const root = await tmp('itest-cancel-');
    const marker = join(root, 'ran');
    await assert.rejects(
      ensureImage({
        cache: new LocalImageCache(root),
        key: 'k',
        mkosi: ['/bin/sh', '-c', 'touch "$1"', 'sh', marker],
        configDir: '/cfg',
        buildLog: join(root, 'image-build.log'),
        env: process.env,
        signal: AbortSignal.abort('SIGTERM'),
      }),
      /cancelled by SIGTERM before the image build started/,
    );
    assert.equal(existsSync(marker), false);
  });

  it('the build log is written fresh, never through a link planted at its path', async () => {
    const root = await tmp('itest-buildlog-');
    const victim = join(root, 'victim');
    await writeFile(victim, 'precious\n');
    const log = join(root, 'image-build.log');
    await symlink(victim, log);
    await ensureImage({
      cache: new LocalImageCache(join(root, 'cache')),
      key: 'k',
      mkosi: ['/bin/sh', '-c', 'echo built; echo image > "$4/img.raw"', 'sh'],
      configDir: '/cfg',
      buildLog: log,
      env: process.env,
    });
    assert.equal(await readFile(victim, 'utf8'), 'precious\n', 'the link target is untouched');
    assert.equal((await lstat(log)).isSymbolicLink(), false);
    assert.equal(await readFile(log, 'utf8'), 'built\n');
  });
});

describe('the local image cache shared by several runs at once (issue 12 item 5)', () => {
  it('three processes saving one key at once all succeed, and one whole image remains', async () => {
    const root = await tmp('itest-race-');
    const reports = await Promise.all(
      [1, 2, 3].map(() => worker('save', { root, key: 'k', rounds: 40 }).report),
    );
    assert.deepEqual(
      reports.flatMap((r) => r.errors),
      [],
    );
    assert.deepEqual(await readdir(join(root, 'images')), ['k']);
    assert.match(await readFile(join(root, 'images/k/image.raw'), 'utf8'), /^\d+\/\d+$/);
    assert.deepEqual(await readdir(join(root, 'build')), [], 'no build or discarded directory left');
  });

  it("a save of a key that another run is booting leaves that run's image untouched", async () => {
    const root = await tmp('itest-inuse-');
    assert.deepEqual((await worker('save', { root, key: 'k', rounds: 1 }).report).errors, []);
    const holder = worker('hold', { root, key: 'k' });
    const dir = await holder.ready;
    const before = { content: await readFile(join(dir, 'image.raw'), 'utf8'), ino: (await stat(dir)).ino };
    // Another run that missed at the same moment builds and saves the same key.
    assert.deepEqual((await worker('save', { root, key: 'k', rounds: 3 }).report).errors, []);
    assert.equal(await readFile(join(dir, 'image.raw'), 'utf8'), before.content);
    assert.equal((await stat(dir)).ino, before.ino, 'the image in use was not replaced');
    holder.child.stdin!.end();
    assert.deepEqual((await holder.report).errors, []);
  });

  it('prune keeps images that live runs use and drops them once those runs are gone', async () => {
    const root = await tmp('itest-prune-');
    const save = async (key: string) =>
      assert.deepEqual((await worker('save', { root, key, rounds: 1, keep: 1 }).report).errors, []);
    await save('k1');
    const holder = worker('hold', { root, key: 'k1' });
    await holder.ready;
    await save('k2');
    assert.deepEqual((await readdir(join(root, 'images'))).sort(), ['k1', 'k2'], 'k1 is in use');
    holder.child.kill('SIGKILL');
    await holder.report;
    await save('k3');
    assert.deepEqual(await readdir(join(root, 'images')), ['k3'], 'k1 and k2 have no live user left');
  });

  it('concurrent restores and prunes: an image never changes or vanishes while a run holds it', async () => {
    const root = await tmp('itest-churn-');
    const keys = ['a', 'b', 'c', 'd'];
    assert.deepEqual((await worker('save', { root, keys, rounds: 1 }).report).errors, []);
    const churn = worker('churn', { root, keys, rounds: 50 });
    // Meanwhile other runs save those keys again and prune down to one image each time.
    const savers = [keys.slice(0, 2), keys.slice(2)].map(
      (some) => worker('save', { root, keys: some, rounds: 5, keep: 1 }).report,
    );
    const reports = await Promise.all([churn.report, ...savers]);
    assert.deepEqual(
      reports.flatMap((r) => r.errors),
      [],
    );
    assert.ok((reports[0]!.hits ?? 0) > 0, 'the churning run had hits to check');
  });

  it("a failed build leaves no directory, and a dead run's build directory is removed by the next", async () => {
    const root = await tmp('itest-leftover-');
    const cache = new LocalImageCache(root);
    await assert.rejects(
      ensureImage({
        cache,
        key: 'bad',
        mkosi: ['/bin/sh', '-c', 'echo half > "$4/half.raw"; echo boom; exit 1', 'sh'],
        configDir: '/cfg',
        buildLog: join(root, 'image-build.log'),
        env: process.env,
      }),
      /image build failed \(mkosi exit 1\)/,
    );
    assert.deepEqual(await readdir(join(root, 'build')), [], 'the failed build left its directory');
    assert.match(await readFile(join(root, 'image-build.log'), 'utf8'), /boom/, 'its log stays');

    const died = worker('build', { root, key: 'k' });
    const dead = await died.ready;
    await died.report;
    assert.ok(existsSync(join(dead, 'partial.raw')));
    // A directory of an old itest, whose PID is gone: also garbage.
    await mkdir(join(root, 'build', 'k.999999999'));
    await writeFile(join(root, 'build', 'k.999999999', 'x'), '');
    // The next run starting a build of its own cleans up.
    const mine = await cache.buildDir('k');
    assert.deepEqual(await readdir(join(root, 'build')), [mine.split('/').pop()]);
  });

  it('an incomplete image directory under the key (no marker) is replaced, never taken for a hit', async () => {
    const root = await tmp('itest-half-');
    await mkdir(join(root, 'images', 'k'), { recursive: true });
    await writeFile(join(root, 'images', 'k', 'image.raw'), 'half');
    const cache = new LocalImageCache(root);
    assert.equal((await cache.restore('k')).hit, false);
    const dir = await cache.buildDir('k');
    await writeFile(join(dir, 'image.raw'), 'whole');
    const saved = await cache.save('k', dir);
    assert.equal(await readFile(join(saved, 'image.raw'), 'utf8'), 'whole');
    assert.equal((await cache.restore('k')).hit, true);
    assert.deepEqual(await readdir(join(root, 'build')), []);
  });
});

/**
 * The real @actions/cache against local stand-ins of the Actions services (Twirp stand-in + Azurite):
 * save, restore hit, restore miss, and injected failures (HTTP 500, services that never answer) that
 * must not fail the run.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ActionsServices, type Fault } from '../helpers/actions-services.ts';
import {
  GitHubImageCache,
  killCacheTar,
  saveDeadlineSeconds,
  savePolicy,
} from '../../src/action/github/actions-cache.ts';
import { ensureImage } from '../../src/image/ensure-image.ts';

const ROOT = new URL('../..', import.meta.url).pathname;

const services = new ActionsServices();
let workspace: string;
let restoreEnv = () => {};

before(async () => {
  await services.start();
  workspace = await mkdtemp(join(tmpdir(), 'itest-ws-'));
  restoreEnv = services.useInProcess({ GITHUB_WORKSPACE: workspace, RUNNER_TEMP: workspace });
});

after(async () => {
  await services.stop();
  restoreEnv();
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
    // The prepare mode only looks the key up: a hit downloads nothing.
    await rm(dir, { recursive: true, force: true });
    const blobGets = () => services.calls.filter((c) => c.startsWith('blob GET')).length;
    const gets = blobGets();
    assert.ok(gets > 0, 'the full restore above did download');
    const lookup = new GitHubImageCache(dir, { allowed: true, why: 'push' }, () => {}, { lookupOnly: true });
    const looked = await lookup.restore('itest-image-test-1');
    assert.equal(looked.hit, true);
    assert.match(looked.detail, /looked up, not downloaded/);
    assert.equal(blobGets(), gets);
    assert.equal(existsSync(join(dir, 'itest-demo.raw')), false);
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
    const main = 'refs/heads/main';
    assert.equal(savePolicy({ eventName: 'push', event: {}, ref: main }).allowed, true);
    assert.equal(
      savePolicy({
        eventName: 'pull_request',
        event: {
          pull_request: { head: { repo: { full_name: 'a/b' } }, base: { repo: { full_name: 'a/b' } } },
        },
        ref: 'refs/pull/1/merge',
      }).allowed,
      true,
    );
    const fork = savePolicy({
      eventName: 'pull_request',
      event: {
        pull_request: { head: { repo: { full_name: 'evil/b' } }, base: { repo: { full_name: 'a/b' } } },
      },
      ref: 'refs/pull/1/merge',
    });
    assert.equal(fork.allowed, false);
    assert.match(fork.why, /fork \(evil\/b\)/);
    assert.equal(savePolicy({ eventName: 'pull_request_target', event: {}, ref: main }).allowed, false);
    const warnings: string[] = [];
    const before = services.calls.length;
    const cache = new GitHubImageCache(join(workspace, 'image4'), fork, (w) => warnings.push(w));
    await cache.save('itest-image-fork', await cache.buildDir());
    assert.equal(services.calls.length, before, 'no request at all');
    assert.match(warnings[0]!, /not saving .* fork/);
  });

  describe('services that accept a request and never answer (deadlines)', () => {
    const push = { allowed: true, why: 'push' };
    async function withFault<T>(fault: Fault, fn: () => Promise<T>): Promise<T> {
      services.fault = fault;
      try {
        return await fn();
      } finally {
        services.fault = 'none';
      }
    }
    async function elapsed<T>(fn: () => Promise<T>): Promise<[T, number]> {
      const t0 = performance.now();
      const v = await fn();
      return [v, (performance.now() - t0) / 1000];
    }
    /** An entry for `key` saved from `dir` (cache versions depend on the path list). */
    async function savedEntry(dir: string, key: string): Promise<void> {
      const cache = new GitHubImageCache(dir, push, () => {});
      await cache.buildDir();
      await writeFile(join(dir, 'itest-demo.raw'), 'the cached image');
      await cache.save(key, dir);
      assert.ok(services.calls.includes('twirp FinalizeCacheEntryUpload'));
    }

    it('a hanging control plane on restore: a miss with a warning within the deadline, then a build', async () => {
      const dir = join(workspace, 'hang-restore-twirp');
      const warnings: string[] = [];
      const cache = new GitHubImageCache(dir, push, (w) => warnings.push(w), {
        restoreSeconds: 3,
        saveSeconds: 3,
      });
      const build = ['/bin/sh', '-c', 'echo built > "$4/itest-demo.raw"', 'sh'];
      const [out, s] = await withFault('twirp-hang', () =>
        elapsed(() =>
          ensureImage({
            cache,
            key: 'itest-image-hang-1',
            mkosi: build,
            configDir: '/cfg',
            buildLog: join(workspace, 'hang1.log'),
            env: process.env,
          }),
        ),
      );
      assert.equal(out.cache, 'miss');
      assert.match(out.detail, /restore gave up after 3 s/);
      assert.equal(await readFile(join(dir, 'itest-demo.raw'), 'utf8'), 'built\n');
      assert.match(warnings.join('\n'), /image cache restore gave up after 3 s .*building instead/);
      assert.ok(out.restoreSeconds >= 2.9 && out.restoreSeconds < 8, `restore took ${out.restoreSeconds} s`);
      assert.ok(s < 30, `${s} s`);
    });

    it('a download that hangs (or stalls mid-body) on restore: a miss, and nothing of it stays in the image directory', async () => {
      for (const fault of ['blob-hang', 'blob-stall'] as const) {
        const dir = join(workspace, `hang-restore-${fault}`);
        await savedEntry(dir, `itest-image-${fault}`);
        // Something stale in the directory: a restore that gives up must not leave it to be booted.
        await writeFile(join(dir, 'itest-demo.raw'), 'half an image');
        const warnings: string[] = [];
        const cache = new GitHubImageCache(dir, push, (w) => warnings.push(w), {
          restoreSeconds: 3,
          saveSeconds: 3,
        });
        const [r, s] = await withFault(fault, () => elapsed(() => cache.restore(`itest-image-${fault}`)));
        assert.equal(r.hit, false, fault);
        assert.equal(existsSync(dir), false, `${fault}: the image directory is gone`);
        // blob-hang: our deadline (3 s), then the library fails its download retry at once but sleeps 5 s
        // before and after it (requestUtils.retry): about 13 s.
        // blob-stall: the library's own 5 s socket timeout on a silent body may win; either way a miss.
        assert.ok(s < 25, `${fault}: ${s} s`);
        if (fault === 'blob-hang') assert.match(warnings.join('\n'), /restore gave up after 3 s/);
      }
    });

    it('the cache still works after a hang (nothing of the abandoned call lingers)', async () => {
      const dir = join(workspace, 'after-hang');
      await savedEntry(dir, 'itest-image-after-hang');
      await rm(dir, { recursive: true, force: true });
      const r = await new GitHubImageCache(dir, push, () => {}, { restoreSeconds: 30 }).restore(
        'itest-image-after-hang',
      );
      assert.equal(r.hit, true);
      assert.equal(await readFile(join(dir, 'itest-demo.raw'), 'utf8'), 'the cached image');
    });

    it('a hanging blob store (or control plane) on save: a warning within the deadline; the built image is used', async () => {
      for (const fault of ['blob-hang', 'blob-stall', 'twirp-hang'] as const) {
        const dir = join(workspace, `hang-save-${fault}`);
        const warnings: string[] = [];
        const cache = new GitHubImageCache(dir, push, (w) => warnings.push(w), {
          restoreSeconds: 3,
          saveSeconds: 3,
        });
        const build = ['/bin/sh', '-c', 'head -c 200000 /dev/urandom > "$4/itest-demo.raw"', 'sh'];
        const [out, s] = await withFault(fault, () =>
          elapsed(() =>
            ensureImage({
              cache,
              key: `itest-image-save-${fault}`,
              mkosi: build,
              configDir: '/cfg',
              buildLog: join(workspace, 'hang-save.log'),
              env: process.env,
            }),
          ),
        );
        assert.equal(out.cache, 'miss', fault);
        assert.equal(out.dir, dir);
        assert.equal((await readFile(join(dir, 'itest-demo.raw'))).length, 200000, `${fault}: image intact`);
        assert.match(
          warnings.join('\n'),
          /image cache save gave up after 3 s .*the run goes on with the built image/,
        );
        assert.ok(
          out.saveSeconds! >= 2.9 && out.saveSeconds! < 8,
          `${fault}: save took ${out.saveSeconds} s`,
        );
        assert.ok(s < 30, `${fault}: ${s} s`);
      }
    });

    it('default deadlines: ITEST_CACHE_TIMEOUT_SECONDS, else 600 s for restore and 120 s + 1 s per 10 MiB for save', async () => {
      assert.equal(saveDeadlineSeconds(0), 120);
      assert.equal(saveDeadlineSeconds(4 * 1024 ** 3), 120 + 410);
      const warnings: string[] = [];
      const cache = new GitHubImageCache(
        join(workspace, 'env-deadline'),
        push,
        (w) => warnings.push(w),
        {},
        {
          ...process.env,
          ITEST_CACHE_TIMEOUT_SECONDS: '2',
        },
      );
      const [r, s] = await withFault('twirp-hang', () => elapsed(() => cache.restore('itest-image-env')));
      assert.equal(r.hit, false);
      assert.match(warnings.join('\n'), /gave up after 2 s/);
      assert.ok(s < 6, `${s} s`);
    });

    it('an abandoned restore stops the tar that would go on unpacking', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'itest-tar-'));
      const fifo = join(dir, 'cache.tzst');
      execFileSync('mkfifo', [fifo]);
      // Blocks opening the FIFO forever, like an unpacking that outlives its deadline.
      const tar = spawn('tar', ['-xf', fifo, '-P', '-C', dir], { stdio: 'ignore' });
      const other = spawn('sleep', ['30'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise<NodeJS.Signals | null>((r) => tar.on('exit', (_c, sig) => r(sig)));
      const killed = await killCacheTar();
      assert.deepEqual(killed, [tar.pid]);
      assert.equal(await exited, 'SIGKILL');
      assert.equal(other.exitCode, null, 'other children are left alone');
      other.kill();
      await rm(dir, { recursive: true, force: true });
    });

    it('the process still exits on its own after abandoned restores, saves and uploads (no lingering work, no unhandled rejection)', async () => {
      const dir = join(workspace, 'child');
      await mkdir(dir, { recursive: true });
      const t0 = performance.now();
      let done = 0;
      const child = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const c = spawn(
          process.execPath,
          ['--import', 'tsx', join(ROOT, 'test/helpers/hang-child.ts'), dir],
          {
            cwd: ROOT,
            env: { ...process.env, ...services.env(), GITHUB_WORKSPACE: workspace, RUNNER_TEMP: workspace },
            stdio: ['pipe', 'pipe', 'pipe'],
          },
        );
        let out = '';
        c.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          // The services live in this process: set the fault the child asks for, then let it go on.
          for (const m of d.matchAll(/^FAULT=(\S+)$/gm)) {
            services.fault = m[1] as Fault;
            c.stdin.write('ok\n');
          }
          if (/^DONE /m.test(d)) done = performance.now();
        });
        c.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
        const kill = setTimeout(() => c.kill('SIGKILL'), 120_000);
        c.on('close', (code) => {
          clearTimeout(kill);
          resolve({ code, out });
        });
      });
      services.fault = 'none';
      const s = (performance.now() - t0) / 1000;
      const tail = (performance.now() - done) / 1000;
      assert.equal(child.code, 0, child.out);
      assert.doesNotMatch(child.out, /UNHANDLED/);
      assert.match(child.out, /^DONE restore=miss save=warned upload=gave up after 2 s/m, child.out);
      // After its last line the process must end by itself, at most after the libraries' short retry sleeps.
      assert.ok(done > 0 && tail < 15, `the child lived ${tail} s after its work:\n${child.out}`);
      assert.ok(s < 60, `${s} s in all`);
    });
  });
});

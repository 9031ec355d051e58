/**
 * Least privilege, proven (issue 12 item 16): a user made for this test, with nothing but subordinate ID
 * ranges, runs the bundled CLI. It builds the demo image with the real mkosi into its own cache (user
 * namespaces, no root), boots TEST-02-SKIP under TCG (`--kvm no`), gets its right outcome, and writes
 * nothing outside its cache (~/.cache: itest's images and mkosi's package cache) and its output
 * directory: every file on the host that it or its subordinate IDs own and that changed during the run
 * is in one of those two. About 2-3.5 minutes (the build, then one VM).
 *
 * Needs root (it creates the user); skips otherwise. The user, its ID ranges and everything it wrote are
 * removed afterwards, also when the test fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertValidResults } from '../helpers/results.ts';
import type { Results } from '../../src/results/model.ts';
import { listProcesses } from '../../src/util/process.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = join(ROOT, 'dist/cli');
const DEMO = join(ROOT, 'examples/demo');
/** Gives up on a run that hangs (build and VM take 2-4 minutes under TCG). */
const RUN_LIMIT_MS = 15 * 60_000;

interface Range {
  lo: number;
  hi: number;
}

/** Runs a command as root; fails the test with its output when it fails. */
function must(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.error?.message ?? ''}${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** The user's range in /etc/subuid or /etc/subgid, if it has one. */
async function rangeOf(file: string, user: string): Promise<Range | undefined> {
  const line = (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line) return undefined;
  const [, start, count] = line.split(':').map(Number);
  return { lo: start!, hi: start! + count! - 1 };
}

/** A range of 65536 IDs above every range handed out in /etc/subuid and /etc/subgid. */
async function freeRange(): Promise<Range> {
  let lo = 100_000;
  for (const file of ['/etc/subuid', '/etc/subgid'])
    for (const l of (await readFile(file, 'utf8').catch(() => '')).split('\n')) {
      const [, start, count] = l.split(':').map(Number);
      if (start! >= 0 && count! > 0) lo = Math.max(lo, start! + count!);
    }
  return { lo, hi: lo + 65_535 };
}

/** PIDs of processes whose real UID is uid or in the range (what the user's namespaces map to). */
async function processesOf(uid: number, range: Range): Promise<number[]> {
  const pids: number[] = [];
  for (const { pid } of await listProcesses()) {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const real = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1] ?? -1);
    if (real < 0) continue;
    if (real === uid || (real >= range.lo && real <= range.hi)) pids.push(pid);
  }
  return pids;
}

async function killAll(uid: number, range: Range): Promise<void> {
  for (const pid of await processesOf(uid, range)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/**
 * Every path the user (or its subordinate IDs) owns whose inode changed after `stamp`, outside the
 * allowed directories. Files it only read keep their ctime.
 */
function writtenOutside(o: {
  stamp: string;
  uid: number;
  gid: number;
  ids: Range;
  gids: Range;
  allowed: string[];
}): string[] {
  const owned = (flag: string, id: number) => [flag, String(id)];
  const inRange = (flag: string, r: Range) => ['(', flag, `+${r.lo - 1}`, flag, `-${r.hi + 1}`, ')'];
  const prune = ['/proc', '/sys', ...o.allowed].flatMap((p, i) => [...(i ? ['-o'] : []), '-path', p]);
  const r = spawnSync(
    'find',
    [
      '/',
      '(',
      ...prune,
      ')',
      '-prune',
      '-o',
      '(',
      ...owned('-uid', o.uid),
      '-o',
      ...owned('-gid', o.gid),
      '-o',
      ...inRange('-uid', o.ids),
      '-o',
      ...inRange('-gid', o.gids),
      ')',
      '-cnewer',
      o.stamp,
      '-print',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  // find exits 1 for the odd unreadable or vanished path; what it printed is still the answer.
  if (r.status !== 0 && r.status !== 1) throw new Error(`find failed: ${r.error?.message ?? r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

describe('least privilege (issue 12 item 16)', () => {
  it('a non-root user with subuid/subgid ranges builds the demo image and runs TEST-02-SKIP, writing only its cache and output', async (t) => {
    if (process.getuid?.() !== 0) {
      t.skip('needs root: it creates a user for the test (useradd), then runs itest as that user');
      return;
    }
    assert.ok(existsSync(join(CLI, 'index.js')), 'dist/cli/index.js missing: run `npm run bundle`');
    const user = `itest-e2e-${randomBytes(3).toString('hex')}`;
    // Root's own directories may be closed to others: the user gets a copy of the CLI and the config,
    // readable, in a directory it cannot write.
    const base = await mkdtemp(join(tmpdir(), 'itest-unprivileged-'));
    await chmod(base, 0o755);
    const home = join(base, 'home');
    const cache = join(home, '.cache');
    const out = join(home, 'out');
    const stamp = join(base, 'stamp');
    let uid = -1;
    let gid = -1;
    let ids: Range = { lo: -1, hi: -1 };
    let gids: Range = { lo: -1, hi: -1 };
    let created = false;
    let clean = false;
    try {
      await cp(CLI, join(base, 'cli'), { recursive: true });
      await cp(DEMO, join(base, 'demo'), { recursive: true });
      must([
        'useradd',
        '--home-dir',
        home,
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        '--user-group',
        user,
      ]);
      created = true;
      uid = Number(must(['id', '-u', user]).trim());
      gid = Number(must(['id', '-g', user]).trim());
      // useradd hands out ranges when login.defs says so (Debian's does); else give them.
      const [su, sg] = [await rangeOf('/etc/subuid', user), await rangeOf('/etc/subgid', user)];
      if (su && sg) [ids, gids] = [su, sg];
      else {
        ids = gids = await freeRange();
        const r = `${ids.lo}-${ids.hi}`;
        must(['usermod', '--add-subuids', r, '--add-subgids', r, user]);
      }
      for (const d of [home, cache, out]) {
        await mkdir(d, { recursive: true, mode: 0o755 });
        await chown(d, uid, gid);
      }
      await writeFile(stamp, '');

      const t0 = performance.now();
      const run = await new Promise<{ code: number | null; log: string }>((resolve) => {
        const child = spawn(
          'setpriv',
          [
            `--reuid=${uid}`,
            `--regid=${gid}`,
            '--init-groups',
            '--',
            process.execPath,
            join(base, 'cli/index.js'),
            'run',
            '--config',
            join(base, 'demo'),
            '--test',
            'TEST-02-SKIP',
            '--kvm',
            'no',
            '--output',
            out,
            '--keep',
            'all',
          ],
          {
            cwd: home,
            // A login's environment, nothing of root's but PATH; the cache is the default (~/.cache/itest).
            env: {
              HOME: home,
              USER: user,
              LOGNAME: user,
              PATH: process.env.PATH ?? '/usr/bin:/bin',
              LANG: 'C.UTF-8',
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let log = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (log += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (log += d));
        const timer = setTimeout(() => {
          log += `\n(test: no end after ${RUN_LIMIT_MS / 60_000} min; killing the user's processes)\n`;
          void killAll(uid, ids);
        }, RUN_LIMIT_MS);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, log });
        });
      });
      const wall = (performance.now() - t0) / 1000;
      assert.equal(run.code, 0, `exit ${run.code}\n${run.log}`);

      const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
      assertValidResults(results);
      assert.deepEqual(
        results.tests.map((r) => [r.name, r.status, r.exitStatus]),
        [['TEST-02-SKIP', 'skip', 77]],
      );
      const image = results.environment.image;
      console.log(
        `# unprivileged run: wall ${wall.toFixed(1)} s; image built in ${image.buildSeconds} s; ` +
          `VM ${results.tests[0]!.timings.vmSeconds} s`,
      );
      assert.equal(image.cache, 'miss', 'the user built the image');
      assert.ok(image.dir.startsWith(join(cache, 'itest', 'images') + '/'), `image in ${image.dir}`);
      assert.equal((await stat(join(out, 'results.json'))).uid, uid, 'the run wrote as the user');
      assert.equal((await stat(join(image.dir, 'itest-image.json'))).uid, uid);

      assert.deepEqual(
        writtenOutside({ stamp, uid, gid, ids, gids, allowed: [cache, out] }),
        [],
        `written outside ${cache} and ${out}`,
      );
      assert.deepEqual(await processesOf(uid, ids), [], 'no process of the user outlived the run');
      clean = true;
    } finally {
      if (uid >= 0) await killAll(uid, ids);
      if (created) {
        // What it left anywhere else (a failed run may have), then the user: userdel drops its group and
        // its subuid/subgid lines too.
        // Only with every ID known: find reads `-gid -1` as "below 1", which is root's group.
        const known = uid > 0 && gid > 0 && ids.lo > 0 && gids.lo > 0 && existsSync(stamp);
        const strays = !clean && known ? writtenOutside({ stamp, uid, gid, ids, gids, allowed: [base] }) : [];
        for (const p of strays) await rm(p, { recursive: true, force: true });
        spawnSync('userdel', [user]);
      }
      await rm(base, { recursive: true, force: true });
    }
  });
});

/**
 * The transports side by side (issue 15): one test of the demo image over `serial` and over `vsock-user`,
 * alternating, one VM at a time, through the bundled CLI. Per run: boot to result (the VM's time) and the
 * journal's completeness: the test unit counts the entries of the guest's own journal and logs the count;
 * the received .journal's entries before that line are set against it. And the cost of the user-space
 * device itself: vhost-device-vsock's start (spawn to its control socket, with journal-remote and the notify
 * listener, no VM) and its resident memory while a VM runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Results } from '../src/results/model.ts';
import { startUserVsock } from '../src/run/user-vsock.ts';
import { listProcesses } from '../src/util/process.ts';
import { BENCH_TMP, ROOT, log, median, round, timeCommand, type BenchRow } from './lib.ts';
import { DEFAULT_CACHE } from './engine-overhead.ts';

const MARK = 'itest-bench: the guest journal holds';
const MANIFEST = `version: 1
firmware: linux
tests:
  - name: itest-bench-journal
    timeout: 300
    infra-retries: 0
    credentials:
      systemd.extra-unit.itest-bench-journal.service: |
        [Unit]
        Description=itest bench: count the guest's journal entries
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c 'n=$(journalctl -q -o export | grep -c "^__CURSOR="); echo "${MARK} $n entries"'
`;

interface TransportRun {
  transport: string;
  vmSeconds: number;
  guestEntries: number;
  receivedBefore: number;
  receivedTotal: number;
  status: string;
}

/** The received journal's entries before the mark, the mark's count of the guest's, and all of them. */
function completeness(journal: string): { guest: number; before: number; total: number } {
  const lines = execFileSync('journalctl', ['--file', journal, '-q', '-o', 'cat', '--no-pager'], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 ** 2,
  }).split('\n');
  const at = lines.findIndex((l) => l.startsWith(MARK));
  const total = Number(
    /Entry objects:\s*(\d+)/.exec(
      execFileSync('journalctl', ['--file', journal, '--header'], { encoding: 'utf8' }),
    )?.[1],
  );
  return {
    guest: at < 0 ? NaN : Number(lines[at]!.slice(MARK.length).trim().split(' ')[0]),
    before: at,
    total,
  };
}

/** The largest resident set of any vhost-device-vsock, sampled every 500 ms until stop(). */
function sampleDeviceRss(): { stop(): Promise<number> } {
  let most = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      for (const p of await listProcesses()) {
        if (!p.argv[0]?.endsWith('vhost-device-vsock')) continue;
        const status = await readFile(`/proc/${p.pid}/status`, 'utf8').catch(() => '');
        most = Math.max(most, Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0));
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return most;
    },
  };
}

async function runOnce(transport: 'serial' | 'vsock-user', cacheDir: string, manifest: string) {
  const out = await mkdtemp(join(BENCH_TMP, `transport-${transport}-`));
  const rss = sampleDeviceRss();
  const run = await timeCommand([
    'node',
    join(ROOT, 'dist/cli/index.js'),
    'run',
    '--config',
    join(ROOT, 'examples/demo'),
    '--manifest',
    manifest,
    '--kvm',
    'no',
    '--transport',
    transport,
    '--cache-dir',
    cacheDir,
    '--keep',
    'all',
    '--output',
    out,
  ]);
  const deviceKiB = await rss.stop();
  if (run.code !== 0)
    throw new Error(`transports: ${transport} run exited ${run.code}: ${run.stdout.slice(-1500)}`);
  const r = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as Results;
  const t = r.tests[0]!;
  const c = completeness(t.files.journal!);
  const row: TransportRun = {
    transport,
    vmSeconds: t.timings.vmSeconds,
    guestEntries: c.guest,
    receivedBefore: c.before,
    receivedTotal: c.total,
    status: t.status,
  };
  log(
    `transports: ${transport.padEnd(10)} ${t.status} VM ${t.timings.vmSeconds} s; journal: ${c.before} received before the mark / ${c.guest} in the guest (${c.total} in all)` +
      (transport === 'vsock-user' ? `; vhost-device-vsock RSS ${deviceKiB} KiB at most` : ''),
  );
  await rm(out, { recursive: true, force: true });
  return { row, deviceKiB };
}

/** vhost-device-vsock and the listeners up (control socket there), then down; no VM. */
async function deviceStart(reps: number): Promise<number[]> {
  const device = execFileSync('sh', ['-c', 'command -v vhost-device-vsock'], { encoding: 'utf8' }).trim();
  const remote = ['/usr/lib/systemd/systemd-journal-remote', '/lib/systemd/systemd-journal-remote'].find(
    (p) => {
      try {
        execFileSync('test', ['-x', p]);
        return true;
      } catch {
        return false;
      }
    },
  )!;
  const dir = await mkdtemp(join(BENCH_TMP, 'device-start-'));
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const uv = await startUserVsock({
      machine: `itest-bench-${i}`,
      tmp: dir,
      vhostDevice: device,
      journalRemote: remote,
      journal: join(dir, `${i}.journal`),
      env: process.env,
    });
    ms.push(performance.now() - t0);
    await uv.stop();
  }
  await rm(dir, { recursive: true, force: true });
  return ms;
}

export async function benchTransports(opts: { pairs: number; cacheDir?: string }): Promise<BenchRow> {
  const cacheDir = opts.cacheDir ?? process.env.ITEST_CACHE_DIR ?? DEFAULT_CACHE;
  await mkdir(BENCH_TMP, { recursive: true });
  const manifest = join(BENCH_TMP, 'transports.yaml');
  await writeFile(manifest, MANIFEST);
  const runs: TransportRun[] = [];
  const rss: number[] = [];
  for (let i = 0; i < opts.pairs; i++)
    for (const transport of i % 2
      ? (['vsock-user', 'serial'] as const)
      : (['serial', 'vsock-user'] as const)) {
      const { row, deviceKiB } = await runOnce(transport, cacheDir, manifest);
      runs.push(row);
      if (transport === 'vsock-user') rss.push(deviceKiB);
    }
  const start = await deviceStart(5);
  const of = (t: string) => runs.filter((r) => r.transport === t);
  const vm = (t: string) => median(of(t).map((r) => r.vmSeconds));
  const complete = (t: string) =>
    of(t)
      .map((r) => `${r.receivedBefore}/${r.guestEntries}`)
      .join(', ');
  const a = vm('vsock-user');
  const b = vm('serial');
  return {
    id: 'transports',
    benchmark: 'one demo test, vsock-user vs serial',
    a: { label: 'vsock-user: VM', seconds: round(a, 1) },
    b: { label: 'serial: VM', seconds: round(b, 1) },
    ratio: round(a / b),
    target: 'none (comparison)',
    met: undefined,
    notes: [
      `${opts.pairs} alternating pair(s), TCG, one VM at a time; medians of the VM time (boot to result): vsock-user ${a.toFixed(1)} s, serial ${b.toFixed(1)} s`,
      `journal completeness (entries received before the mark / entries the guest counted): vsock-user ${complete('vsock-user')}; serial ${complete('serial')}`,
      `vhost-device-vsock: start with journal-remote and the notify listener ${median(start).toFixed(0)} ms (median of ${start.length}, no VM); RSS while a VM runs ${Math.max(...rss)} KiB at most`,
    ],
    details: { runs, deviceStartMs: start.map((x) => round(x, 1)), deviceRssKiB: rss },
  };
}

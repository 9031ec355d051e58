/**
 * End to end on real tools: the bundled CLI builds the demo image with the real mkosi, boots real QEMU
 * VMs (TCG and the virtio-serial transport on machines without KVM and vhost-vsock), reads the journals
 * with the real journalctl. Slow (minutes): run with `npm run test:e2e`.
 *
 * ITEST_E2E_CACHE: image cache directory to reuse between runs (default: a fresh temp dir, so a build).
 * ITEST_E2E_MKOSI_NEXT: launcher of a mkosi >= 25 (scripts/fetch-mkosi-sid.sh) for the 25+ dialect run.
 */
import { describe, it, before, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { listProcesses } from '../../src/util/process.ts';
import { VHOST_DEVICE_VSOCK } from '../helpers/standin.ts';
import { constants, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { Results } from '../../src/results/model.ts';
import {
  CLI,
  ROOT,
  byName,
  itest,
  journal,
  printTimings,
  readResults,
  type CliRun,
} from '../helpers/e2e-cli.ts';
import { findProbeKernel, kernelDigest, probeKvmBoot } from '../../src/host/kvm-boot-probe.ts';
import { bootVerdictKey } from '../../src/host/confirm-kvm.ts';
import { currentBootId, VerdictCache } from '../../src/host/verdict-cache.ts';

const DEMO = join(ROOT, 'examples/demo');
const CACHE = process.env.ITEST_E2E_CACHE ?? '';

let cacheDir: string;
/**
 * The file's runs start together and take their VMs from one budget (--vm-slots): two TCG VMs
 * at a time on this project's 2-CPU machines (four at once made each boot three to four times slower, and
 * the hang VM never got past its initrd).
 */
let slots: string;
/** The demo image's key (itest hash): the runs that need no result of the demo run start once it exists. */
let imageKey: string;
/** The demo run's results: later tests boot its image. */
let first: Results | undefined;
/** `itest run` of the demo into out, with the shared image cache, and more flags after. */
const demoRun = (out: string, ...more: string[]) =>
  itest(['run', '--config', DEMO, '--output', out, '--cache-dir', cacheDir, '--vm-slots', slots, ...more]);
before(async () => {
  assert.ok(existsSync(CLI), 'dist/cli/index.js missing: run `npm run bundle`');
  cacheDir = CACHE || (await mkdtemp(join(tmpdir(), 'itest-e2e-cache-')));
  slots = await mkdtemp(join(tmpdir(), 'itest-e2e-slots-'));
  const hash = spawnSync(process.execPath, [CLI, 'hash', '--config', DEMO], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(hash.status, 0, hash.stderr);
  imageKey = hash.stdout.trim().split('\n').pop()!;
});

/** The transport `auto` must pick on this host: the kernel's vsock, else vhost-device-vsock, else serial. */
const AUTO_TRANSPORT = existsSync('/dev/vhost-vsock')
  ? 'vsock'
  : VHOST_DEVICE_VSOCK
    ? 'vsock-user'
    : 'serial';

/** The --socket of every vhost-device-vsock running now. */
async function deviceSockets(): Promise<string[]> {
  return (await listProcesses())
    .filter((p) => p.argv[0]?.endsWith('vhost-device-vsock'))
    .map((p) => p.argv.find((a) => a.startsWith('--socket='))!);
}

/**
 * Every vhost-device-vsock socket seen, sampled every 250 ms until stop() (vsock-user), each sample kept:
 * the other e2e files run at the same time, so the caller keeps only its own run's (by machine name).
 */
function sampleDevices(): { stop(): Promise<string[][]> } {
  const samples: string[][] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      samples.push(await deviceSockets());
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      on = false;
      await loop;
      return samples;
    },
  };
}

/** A socket path belongs to one of these machines: `<tmp>/<machine>.vsock/...`. */
const ofMachines = (machines: string[]) => (socket: string) =>
  machines.some((m) => socket.includes(`/${m}.vsock/`));

/** Resolves once n of the demo file's VM slots are taken, or once `over` says to stop looking. */
async function slotsTaken(n: number, over: () => boolean): Promise<void> {
  while (!over()) {
    const held = (await readdir(slots)).filter((f) => /^\d+$/.test(f)).length;
    if (held >= n) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Resolved once a promise-maker is done, however it ended. */
function whenDone(): { promise: Promise<void>; done: () => void } {
  let done = () => {};
  const promise = new Promise<void>((r) => (done = r));
  return { promise, done };
}

/** The demo run is over (the cached run needs its results). */
const demoDone = whenDone();
let demoOver = false;
void demoDone.promise.then(() => (demoOver = true));

/** Where the local image cache keeps the demo's image. */
const imageDirOf = (key: string) => join(cacheDir, 'images', key);

/** Resolves once the demo's image is in the cache (restored or built by the demo run), or the demo run is over. */
async function imageReady(): Promise<void> {
  while (!demoOver && !existsSync(join(imageDirOf(imageKey), 'itest-image.json')))
    await new Promise((r) => setTimeout(r, 500));
}

/**
 * The panic and multi-boot run goes first: its three-boot test is the longest VM of the group, and with
 * the others queued before it the group's wall was that test's queue time plus its own.
 */
const longestFirst = whenDone();

// The demo run, the cached run, the failure paths and the 25+ dialect at once, their VMs two at a time.
describe(
  `demo end to end (mkosi 24 dialect, transport auto: ${AUTO_TRANSPORT} here): the demo run, a cache hit, failure paths, mkosi 25+ (two VMs at a time)`,
  { concurrency: true },
  () => {
    it('builds or restores the image, runs three tests in parallel VMs and exits 0', async () => {
      try {
        await demoRunTest();
      } finally {
        demoDone.done();
      }
    });

    async function demoRunTest() {
      const out = await mkdtemp(join(tmpdir(), 'itest-e2e-demo-'));
      const devices = sampleDevices();
      const run = await demoRun(out, '--keep', 'all');
      const seen = await devices.stop();
      assert.equal(run.code, 0, `exit ${run.code}\n${run.out}\n${run.err}`);
      first = await readResults(out);
      printTimings('demo run', first, run);
      assert.deepEqual(
        first.tests.map((t) => [t.name, t.status, t.exitStatus]),
        [
          ['TEST-01-BASIC', 'pass', 123],
          ['TEST-03-EXPECTED-FAIL', 'pass', 1],
          ['TEST-02-SKIP', 'skip', 77],
        ],
      );
      assert.equal(first.summary.ok, true);
      assert.match(byName(first, 'TEST-03-EXPECTED-FAIL').reason, /failed as expected/);
      assert.equal(first.environment.mkosi.dialect, 'mkosi24');
      assert.equal(first.environment.transport, AUTO_TRANSPORT);
      if (AUTO_TRANSPORT === 'vsock-user') {
        // The verdict is PID 1's own EXIT_STATUS= over the notify socket, and the journal came over vsock:
        // no serial journal port exists on this transport, so its exporter never ran in the guest.
        for (const t of first.tests) {
          assert.equal(t.attempts[0]!.notifyExitStatus, t.exitStatus, `${t.name}: EXIT_STATUS= over vsock`);
          assert.equal(journal(t.files.journal!, '-u', 'itest-journal-export.service', '-o', 'cat'), '');
          assert.match(journal(t.files.journal!, '-o', 'cat'), /journal\.forward_to_socket/);
        }
        // One device per VM with sockets of its own, never more at once than VMs, none left afterwards.
        const mine = ofMachines(first.tests.flatMap((t) => t.attempts.map((a) => a.machine)));
        const sockets = new Set(seen.flat().filter(mine));
        const most = Math.max(0, ...seen.map((now) => now.filter(mine).length));
        const attempts = first.tests.reduce((n, t) => n + t.attempts.length, 0);
        assert.equal(sockets.size, attempts, [...sockets].join(' '));
        assert.ok(most <= first.environment.jobs, `${most} devices at once`);
        assert.deepEqual((await deviceSockets()).filter(mine), [], 'no device outlives the run');
      }
      assert.ok(['hit', 'miss'].includes(first.environment.image.cache));
      assert.match(run.out, /\[3\/3\]/, 'live progress lines');
      assert.match(run.out, /3 tests: 2 passed, 0 failed, 1 skipped/);

      // Each test's journal is readable with the real journalctl and holds the test's own output line.
      const lines: Record<string, string> = {
        'TEST-01-BASIC': 'TEST-01-BASIC: hello from',
        'TEST-02-SKIP': 'TEST-02-SKIP: nothing to test here',
        'TEST-03-EXPECTED-FAIL': 'TEST-03-EXPECTED-FAIL: failing on purpose',
      };
      for (const t of first.tests) {
        assert.ok(t.files.journal && t.files.console, `${t.name} files: ${JSON.stringify(t.files)}`);
        assert.ok(t.files.journal.endsWith(`${t.name}.journal`));
        assert.ok(
          journal(t.files.journal, '-u', t.unit, '-o', 'cat').includes(lines[t.name]!),
          `${t.name} journal lacks its line`,
        );
        assert.ok(
          t.outputTail.some((l) => l.includes(lines[t.name]!)),
          `${t.name} outputTail: ${t.outputTail.join('|')}`,
        );
        const consoleLog = await readFile(t.files.console, 'utf8');
        assert.ok(consoleLog.includes(lines[t.name]!), `${t.name} console log lacks its line`);
        assert.equal(t.attempts.length, 1);
        assert.match(t.attempts[0]!.statusLine ?? '', /^SERVICE_RESULT=/);
        // The rerun command works verbatim from where the user ran itest.
        assert.equal(
          t.rerun,
          `node dist/cli/index.js run --config examples/demo --test ${t.name} --keep all`,
        );
      }

      // The digest of real journals: the failing unit, its result, and the guest's boot phases.
      const failing = byName(first, 'TEST-03-EXPECTED-FAIL').digest!;
      assert.deepEqual(
        failing.failedUnits.find((u) => u.unit === 'TEST-03-EXPECTED-FAIL.service'),
        { unit: 'TEST-03-EXPECTED-FAIL.service', result: 'exit-code' },
      );
      for (const t of first.tests) {
        assert.ok((t.digest?.entries ?? 0) > 100, `${t.name} digest read ${t.digest?.entries} entries`);
        // PID 1 logs "Startup finished" when the boot's jobs are done: a test unit that succeeds lets it, one
        // whose end (FailureAction=exit, 77 or 1) starts the shutdown first may not (seen both ways).
        if (t.reason === 'unit succeeded')
          assert.ok(
            (t.digest?.boot?.kernel ?? 0) > 0,
            `${t.name} boot phases ${JSON.stringify(t.digest?.boot)}`,
          );
        assert.deepEqual(t.digest?.coredumps, []);
        assert.deepEqual(t.digest?.notes, []);
      }
      console.log(
        `# guest boot phases: ${first.tests.map((t) => `${t.name} ${JSON.stringify(t.digest?.boot)}`).join('; ')}`,
      );

      const xml = await readFile(join(out, 'junit.xml'), 'utf8');
      assert.equal(XMLValidator.validate(xml), true);
      const suite = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(xml).testsuites
        .testsuite;
      assert.equal(suite['@tests'], '3');
      assert.equal(suite['@skipped'], '1');
      assert.equal(suite['@failures'], '0');
      assert.equal(suite['@errors'], '0');
      // Nothing of the intermediate work stays behind.
      assert.ok(!(await readdir(out)).includes('.work'));
    }

    it('a second run hits the cache, builds nothing, deletes passing logs by default, and trusts no remembered KVM verdict blindly', async () => {
      // It needs the demo run's results (its QEMU and image) for the verdict it plants.
      await demoDone.promise;
      // A verdict from an earlier run of this boot that says KVM works: on a host whose KVM lies, the VM
      // itself must find out, stop within seconds and rerun under TCG.
      const kind = await hostKind();
      const qemuVersion = first!.environment.qemu.version;
      const kernel = (await findProbeKernel(first!.environment.image.dir))!;
      const key = bootVerdictKey(qemuVersion, await kernelDigest(kernel));
      // A cache of its own holding the demo run's image (hard links: no copy), so that the planted verdict
      // misleads no other e2e file's run that shares the image cache meanwhile.
      const ownCache = await mkdtemp(join(tmpdir(), 'itest-e2e-cache-again-'));
      await mkdir(join(ownCache, 'images'));
      const cp = spawnSync('cp', ['-al', first!.environment.image.dir, join(ownCache, 'images')], {
        encoding: 'utf8',
      });
      assert.equal(cp.status, 0, cp.stderr);
      const verdicts = new VerdictCache(ownCache, await currentBootId());
      await verdicts.set(key, {
        usable: true,
        detail: 'planted by the test',
        seconds: 0,
        at: new Date().toISOString(),
      });
      const out = await mkdtemp(join(tmpdir(), 'itest-e2e-again-'));
      const run = await itest([
        'run',
        '--config',
        DEMO,
        '--output',
        out,
        '--cache-dir',
        ownCache,
        '--vm-slots',
        slots,
        '--test',
        'TEST-01-BASIC',
      ]);
      assert.equal(run.code, 0, `${run.out}\n${run.err}`);
      const r = await readResults(out);
      printTimings('cached run', r, run);
      assert.equal(r.environment.image.cache, 'hit');
      assert.equal(r.environment.image.key, first?.environment.image.key);
      assert.equal(r.environment.image.buildSeconds, undefined);
      assert.ok((r.environment.image.restoreSeconds ?? 99) < 2, 'restoring from the local cache is instant');
      assert.ok(!existsSync(join(out, 'image-build.log')), 'no build log: nothing was built');
      assert.doesNotMatch(run.out, /building:/);
      const t = byName(r, 'TEST-01-BASIC');
      assert.equal(t.status, 'pass', t.reason);
      assert.deepEqual(t.files, {}, '--keep failed drops the logs of passing tests');
      assert.ok(!existsSync(join(out, 'TEST-01-BASIC.journal')));
      if (kind !== 'pausing') {
        assert.deepEqual(
          t.attempts.map((a) => a.accel),
          [kind === 'works' ? 'kvm' : 'tcg'],
        );
        return;
      }
      assert.deepEqual(
        t.attempts.map((a) => [a.accel, a.status]),
        [
          ['kvm', 'error'],
          ['tcg', 'pass'],
        ],
      );
      const kvmAttempt = t.attempts[0]!;
      assert.match(kvmAttempt.reason, /`KVM internal error\. Suberror: \d+`/, "QEMU's own words");
      const after = Number(/paused the guest ([\d.]+) s after start/.exec(kvmAttempt.reason)?.[1]);
      console.log(
        `# VM start to "KVM broken": ${after} s (the VM was up ${kvmAttempt.durations.vmSeconds} s)`,
      );
      assert.ok(after > 0 && after < 30, kvmAttempt.reason);
      assert.equal(r.environment.accelFallback?.detectedBy, 'vm');
      assert.deepEqual(r.environment.accelFallback?.rerun, ['TEST-01-BASIC']);
      assert.equal(r.environment.timeoutScale, 3);
      assert.match(run.err, /KVM IS BROKEN ON THIS HOST: the VM of TEST-01-BASIC/);
      assert.match(run.out, /WARNING: KVM is broken on this host/);
      // The stopped attempt is not a passing one: its console stays, with QEMU's words in it.
      assert.match(await readFile(kvmAttempt.files.console!, 'utf8'), /KVM internal error/);
      // And the next run on this boot knows without trying.
      assert.equal((await verdicts.get(key))?.usable, false);
    });
    it('a hanging test ends as timeout within its bound, with console and journal kept and no VM left', async () => {
      await imageReady();
      await longestFirst.promise;
      await hangTest();
    });

    async function hangTest() {
      const out = await mkdtemp(join(tmpdir(), 'itest-e2e-hang-'));
      const running = demoRun(
        out,
        '--manifest',
        join(ROOT, 'test/fixtures/hang.yaml'),
        '--timeout-scale',
        '1',
      );
      // While it hangs: `itest ssh` runs a command in its VM over vsock (sshd of the image, the run's key),
      // tried every 5 s from the start of the boot until it answers or the run ends.
      let ended = false;
      void running.then(() => (ended = true));
      const ssh: CliRun[] = [];
      if (AUTO_TRANSPORT === 'vsock-user')
        while (!ended) {
          const a = await itest([
            'ssh',
            'itest-selftest-hang',
            '--output',
            out,
            '--',
            'systemctl',
            'is-active',
            'itest-selftest-hang.service',
          ]);
          ssh.push(a);
          if (a.out.trim() === 'activating') break;
          await new Promise((r) => setTimeout(r, 5000));
        }
      const run = await running;
      assert.equal(run.code, 1, `${run.out}\n${run.err}`);
      if (AUTO_TRANSPORT === 'vsock-user') {
        const answered = ssh.at(-1);
        assert.equal(
          answered?.out.trim(),
          'activating',
          `itest ssh never answered: ${ssh.map((a) => `${a.code}: ${a.err.trim()}`).join(' | ')}`,
        );
        // systemctl is-active exits 3 for a unit that is not active (yet): ssh passed its status on.
        assert.equal(answered.code, 3);
        console.log(
          `# itest ssh answered after ${ssh.length} tries (${answered.seconds.toFixed(1)} s for the last)`,
        );
      }
      const r = await readResults(out);
      printTimings('hang run', r, run);
      const t = byName(r, 'itest-selftest-hang');
      assert.equal(t.status, 'timeout');
      assert.match(t.reason, /no result within 180 s/);
      assert.ok(
        t.timings.vmSeconds >= 180 && t.timings.vmSeconds < 180 + 20,
        `vm ran ${t.timings.vmSeconds} s`,
      );
      assert.ok(t.files.console && (await stat(t.files.console)).size > 0, 'console log kept');
      assert.ok(t.files.journal, 'journal kept');
      assert.ok(
        Number(/Entry objects:\s*(\d+)/.exec(journal(t.files.journal, '--header'))?.[1]) > 0,
        'journal holds entries',
      );
      // The VM was killed mid-test: the journal holds what the guest forwarded up to then (on vsock-user,
      // journal-remote writes what it received once the device is gone).
      assert.equal(r.environment.transport, AUTO_TRANSPORT);
      assert.match(
        journal(t.files.journal, '-u', t.unit, '-o', 'cat'),
        /itest-selftest-hang: sleeping forever/,
      );
      const machine = t.attempts[0]!.machine;
      const leftovers = spawnSync('pgrep', ['-f', machine], { encoding: 'utf8' }).stdout.trim();
      assert.equal(leftovers, '', `processes of ${machine} survived the timeout`);
      assert.match(run.out, /TIME +itest-selftest-hang/);
      // Hang report: SysRq-T through QMP before the kill; the task dump is on the console, the last lines in the digest.
      assert.match(t.reason, /sent SysRq-T/);
      assert.match(await readFile(t.files.console, 'utf8'), /sysrq: Show State/);
      assert.ok((t.digest?.lastLines.length ?? 0) > 0);
      // The digest's hang report: the unit's state and its stuck command (when the boot got to it), not the dump's statistics.
      const d = t.digest!;
      if (d.unitLife?.startedAt !== undefined) {
        assert.equal(d.unitLife.state, 'activating (start job running)');
        if (d.taskDump)
          assert.ok(
            d.taskDump.unitTasks.some((x) => x.comm === 'sleep'),
            JSON.stringify(d.taskDump),
          );
      }
      assert.ok(
        !d.lastLines.some((l) => /Sched Debug|runnable tasks:|\.nr_running/.test(l)),
        d.lastLines.join('\n'),
      );
      assert.ok(!existsSync(join(tmpdir(), `${machine}.qmp`)), 'QMP socket removed');
    }

    it('a kernel panic ends its VM at once (pvpanic), while a test beside it reboots, soft-reboots and powers off on purpose', async () => {
      await imageReady();
      const out = await mkdtemp(join(tmpdir(), 'itest-e2e-panic-'));
      const running = demoRun(
        out,
        '--manifest',
        join(ROOT, 'test/fixtures/panic.yaml'),
        // The serial transport, for real: the journal as an export stream over virtio-serial, converted, and
        // PID 1's exit status from the shutdown hook on the status port.
        '--transport',
        'serial',
        '--keep',
        'all',
      );
      let ended = false;
      void running.finally(() => {
        ended = true;
        longestFirst.done();
      });
      void slotsTaken(2, () => ended).then(() => longestFirst.done());
      const run = await running;
      assert.equal(run.code, 1, `${run.out}\n${run.err}`);
      const r = await readResults(out);
      printTimings('panic and multi-boot run', r, run);
      assert.equal(r.environment.transport, 'serial');
      const t = byName(r, 'itest-selftest-panic');
      assert.equal(t.status, 'error');
      assert.match(
        t.reason,
        /^kernel panic: sysrq triggered crash$/,
        'pvpanic ended QEMU, not the console watch',
      );
      assert.ok(
        t.timings.vmSeconds < 300,
        `ended after ${t.timings.vmSeconds} s, well before the 900 s timeout`,
      );
      assert.match(await readFile(t.files.console!, 'utf8'), /Kernel panic - not syncing/);
      assert.ok(t.digest?.kernel.some((l) => /Kernel panic/.test(l)));
      assert.ok(
        (t.digest?.entries ?? 0) > 100,
        `the serial journal of the boot is kept: ${t.digest?.entries} entries`,
      );

      // Three boots in one VM: a reboot, a soft reboot, then a poweroff the test expects (exit-status: 0).
      const b = byName(r, 'itest-selftest-reboot');
      assert.equal(b.status, 'pass', b.reason);
      assert.equal(b.reason, 'exit status 0 as expected [3 boots (1 reboot, 1 soft reboot)]');
      const a = b.attempts[0]!;
      assert.equal(a.boots, 3);
      assert.equal(a.softReboots, 1);
      // The unit's own line says it was killed (by the poweroff): context, not the verdict.
      assert.equal(a.statusLine, 'SERVICE_RESULT=signal EXIT_CODE=killed EXIT_STATUS=TERM');
      // journalctl 254 has no --no-legend for --list-boots: keep the rows, one per boot id.
      const boots = journal(b.files.journal!, '--list-boots')
        .split('\n')
        .filter((l) => /^\s*-?\d+ [0-9a-f]{32} /.test(l));
      assert.equal(boots.length, 2, `two kernel boots in the one journal:\n${boots.join('\n')}`);
      // Every phase's line once: the stream went on after the soft reboot, from its cursor, not from the start.
      const said = journal(b.files.journal!, '-u', b.unit, '-o', 'cat')
        .split('\n')
        .filter((l) => l.startsWith('itest-selftest-reboot: boot'));
      assert.deepEqual(
        said,
        [1, 2, 3].map((n) => `itest-selftest-reboot: boot ${n}`),
      );
      console.log(`# multi-boot test: ${b.timings.vmSeconds} s of VM for 3 boots`);
    });

    it('boots a test through the mkosi 25+ dialect (vm verb, new flags) on the same image', async (t) => {
      await imageReady();
      await longestFirst.promise;
      await nextDialectTest(t);
    });

    async function nextDialectTest(t: TestContext) {
      const next = process.env.ITEST_E2E_MKOSI_NEXT;
      if (!next) {
        assert.ok(process.env.CI !== 'true', 'CI must set ITEST_E2E_MKOSI_NEXT (scripts/fetch-mkosi-sid.sh)');
        t.skip(
          'ITEST_E2E_MKOSI_NEXT not set; run scripts/fetch-mkosi-sid.sh DIR and point it at DIR/bin/mkosi',
        );
        return;
      }
      // The demo run's image: mkosi 27 boots what mkosi 24 built (with 27 the key, and so a build, would differ).
      const imageDir = imageDirOf(imageKey);
      const out = await mkdtemp(join(tmpdir(), 'itest-e2e-next-'));
      const run = await itest([
        'run',
        '--config',
        DEMO,
        '--mkosi',
        next,
        '--vm-slots',
        slots,
        '--image-dir',
        imageDir,
        '--test',
        'TEST-02-SKIP',
        '--output',
        out,
        '--keep',
        'all',
      ]);
      assert.equal(run.code, 0, `${run.out}\n${run.err}`);
      const r = await readResults(out);
      printTimings('mkosi 25+ run', r, run);
      assert.equal(r.environment.mkosi.dialect, 'mkosi25+');
      assert.ok(Number(r.environment.mkosi.version.split('.')[0]) >= 25);
      assert.equal(r.environment.image.cache, 'external');
      const s = byName(r, 'TEST-02-SKIP');
      assert.equal(s.status, 'skip');
      assert.equal(s.exitStatus, 77);
      assert.ok(
        journal(s.files.journal!, '-u', s.unit, '-o', 'cat').includes('TEST-02-SKIP: nothing to test here'),
      );
    }
  },
);

type Kind = 'no-kvm' | 'aborting' | 'pausing' | 'works';
let knownKind: Kind | undefined;
/** This host's KVM, learned once with the real boot probe on the demo image's real kernel. */
async function hostKind(): Promise<Kind> {
  if (knownKind) return knownKind;
  const imageDir = first?.environment.image.dir;
  assert.ok(imageDir, 'the demo run must have run first');
  const kernel = await findProbeKernel(imageDir);
  assert.ok(kernel, `no kernel in ${imageDir}`);
  const kvmOpens = await open('/dev/kvm', constants.O_RDWR).then(
    async (fh) => (await fh.close(), true),
    () => false,
  );
  if (!kvmOpens) knownKind = 'no-kvm';
  else {
    const v = await probeKvmBoot({ qemu: 'qemu-system-x86_64', kernel });
    knownKind = v.usable ? 'works' : v.failure?.effect === 'paused' ? 'pausing' : 'aborting';
    console.log(`# KVM boot probe: ${v.detail} (${v.seconds} s)`);
  }
  console.log(`# this host's KVM: ${knownKind}`);
  return knownKind;
}

/**
 * The accelerator this host really has. Machines of this project's kind differ (no /dev/kvm; a /dev/kvm
 * that aborts QEMU; one that pauses the guest with a KVM internal error; a working KVM): each test learns
 * the kind with the real boot probe on the demo image's real kernel and asserts what must happen on it.
 * The kinds a machine lacks are covered by test/unit/accel-fallback.test.ts with QEMU and mkosi stand-ins.
 */
describe('the accelerator this host really has (real QEMU, real kernel)', () => {
  let kind: Kind;
  let kernel: string;
  let imageDir: string;
  before(async () => {
    imageDir = first?.environment.image.dir ?? '';
    assert.ok(imageDir, 'the demo run must have run first');
    kernel = (await findProbeKernel(imageDir))!;
    kind = await hostKind();
  });

  it('the boot probe calls the real kernel under TCG usable (it runs to its panic)', async () => {
    const v = await probeKvmBoot({ qemu: 'qemu-system-x86_64', kernel, accel: 'tcg' });
    assert.equal(v.usable, true, v.detail);
    assert.match(v.detail, /ran to its expected panic|ended it after its panic/);
    console.log(`# boot probe under TCG: ${v.seconds} s`);
  });

  it('the demo run with no flag used the accelerator that works, and said so', () => {
    const e = first!.environment;
    if (kind === 'works') {
      assert.equal(e.accel, 'kvm');
      assert.equal(e.accelFallback, undefined);
      return;
    }
    assert.equal(e.accel, 'tcg');
    assert.equal(e.timeoutScale, 3);
    if (kind === 'pausing') {
      // The empty-machine probe passes on such a host: the boot probe caught it, before any test.
      assert.equal(e.accelFallback?.detectedBy, 'probe');
      assert.match(e.accelFallback!.qemuLine, /KVM internal error|kvm run failed|entry failed/);
      assert.deepEqual(e.accelFallback!.rerun, []);
      assert.ok(first!.tests.every((t) => t.attempts.every((a) => a.accel === 'tcg')));
    }
  });

  it('kvm yes: a broken KVM ends the run with exit 3 and the reason, before any test', async () => {
    const out = await mkdtemp(join(tmpdir(), 'itest-e2e-kvm-yes-'));
    const run = await itest([
      'run',
      '--config',
      DEMO,
      '--image-dir',
      imageDir,
      '--cache-dir',
      await mkdtemp(join(tmpdir(), 'itest-e2e-verdicts-')),
      '--test',
      'TEST-02-SKIP',
      '--output',
      out,
      '--kvm',
      'yes',
    ]);
    if (kind === 'works') {
      assert.equal(run.code, 0, `${run.out}\n${run.err}`);
      return;
    }
    assert.equal(run.code, 3, `${run.out}\n${run.err}`);
    assert.match(run.err + run.out, /KVM was required/);
    assert.doesNotMatch(run.out, /\] start /, 'no test was started');
    assert.ok(run.seconds < 60, `${run.seconds} s`);
  });
});

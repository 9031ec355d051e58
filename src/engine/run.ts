/**
 * The engine: plan -> host -> image -> VMs -> results -> reports. Front doors (CLI, action) build a
 * RunConfig and a UI; everything here is the same for both.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { release } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { RunConfig } from '../config/run-config.ts';
import type { TestSpec } from '../config/test-spec.ts';
import { probeHost } from '../host/probe.ts';
import { computeSlots, decideHost, type HostSetup } from '../host/decide.ts';
import { confirmKvm } from '../host/confirm-kvm.ts';
import { Accelerator } from '../run/accelerator.ts';
import type { HostInfo } from '../host/probe.ts';
import { computeImageKey } from './image-key.ts';
import { LocalImageCache } from '../image/local-cache.ts';
import { ensureImage } from '../image/ensure-image.ts';
import type { ImageCache } from '../image/image-cache.ts';
import { runPool } from '../run/pool.ts';
import { executeTest, type TestContext } from '../run/execute-test.ts';
import {
  summarize,
  RESULTS_VERSION,
  type Attempt,
  type Environment,
  type Results,
  type TestResult,
} from '../results/model.ts';
import { renderJUnit } from '../results/junit.ts';
import { renderHost } from '../results/terminal.ts';
import { loadTests } from './load-tests.ts';
import { seconds } from '../util/size.ts';
import { TOOL_VERSION } from '../version.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { expectedSeconds } from '../shard/durations.ts';

export interface Ui {
  info(line: string): void;
  warn(line: string): void;
  /** The selected tests, once the manifest is read and before anything is built or booted. */
  planned(tests: TestSpec[]): void;
  testStart(spec: TestSpec, attempt: number, argv: string[]): void;
  testEnd(spec: TestSpec, attempt: Attempt, willRetry: boolean): void;
}

export interface RunOutput {
  results: Results;
  resultsPath: string;
  junitPath: string;
}

function rerunCommand(cfg: RunConfig, spec: TestSpec): string {
  const rel = (p: string) => relative(process.cwd(), p) || '.';
  const parts = [cfg.invokedAs, 'run', '--config', rel(cfg.configDir)];
  if (cfg.manifestPath !== join(cfg.configDir, 'itest.yaml')) parts.push('--manifest', rel(cfg.manifestPath));
  parts.push('--test', spec.name, '--keep', 'all');
  return parts.join(' ');
}

function cancelledResult(spec: TestSpec, cfg: RunConfig, signal: AbortSignal): TestResult {
  return {
    name: spec.name,
    unit: spec.unit,
    status: 'error',
    reason:
      typeof signal.reason === 'string'
        ? `${signal.reason} (before it started)`
        : 'cancelled before it started',
    exitStatus: null,
    expected: { exitStatus: spec.exitStatus, skipStatus: spec.skipStatus, shouldFail: spec.shouldFail },
    tags: spec.tags,
    flaky: false,
    attempts: [],
    timings: { queuedSeconds: 0, vmSeconds: 0, collectSeconds: 0, totalSeconds: 0 },
    files: {},
    outputTail: [],
    rerun: rerunCommand(cfg, spec),
  };
}

export interface EngineDeps {
  /** Where images are cached; default: the local directory backend (or none with useCache false). */
  imageCache?: ImageCache;
}

export async function runEngine(
  cfg: RunConfig,
  ui: Ui,
  signal: AbortSignal,
  deps: EngineDeps = {},
): Promise<RunOutput> {
  const startedAt = new Date();
  const t0 = performance.now();
  // 1. Everything that can be wrong with the input fails here, before the host is even probed.
  const { manifest, selected } = await loadTests(cfg);
  ui.planned(selected);
  if (cfg.shell && selected.length !== 1) {
    throw new UserError(
      `--shell keeps one VM up on this terminal: select exactly one test with --test (selected: ${selected.map((t) => t.name).join(', ')})`,
    );
  }

  const { host, hostSetup, image, mkosiVersion } = await prepareImage(cfg, ui, deps);
  const accelerator = await settleAccelerator(cfg, ui, host, hostSetup, image.dir);
  // The engine stops the run itself when KVM was required and turned out broken.
  const runSignal = AbortSignal.any([signal, accelerator.stopSignal]);

  // 4. VMs. The pool follows the accelerator: TCG burns a core per vCPU, so it may shrink after a switch.
  const maxRam = Math.max(...selected.map((t) => t.ram));
  const slotsNow = () => {
    const now = accelerator.now;
    return computeSlots({
      cpus: host.cpus,
      memAvailable: host.memAvailable,
      vmRam: maxRam,
      vmCpus: Math.max(...selected.map((t) => t.cpus ?? now.defaultCpus)),
      accel: now.accel,
      jobs: cfg.jobs,
    });
  };
  const pool = slotsNow();
  if (cfg.jobs !== undefined && cfg.jobs > pool.byMemory)
    ui.warn(
      `--jobs ${cfg.jobs} exceeds what memory allows (${pool.byMemory} VMs of ${Math.round(maxRam / 1024 ** 2)} MiB)`,
    );
  ui.info(
    `running ${selected.length} test(s), ${pool.slots} at once (CPU allows ${pool.byCpu}, memory ${pool.byMemory})`,
  );

  const runId = randomBytes(3).toString('hex');
  const ctx: TestContext = {
    base: {
      mkosi: cfg.mkosi,
      dialect: hostSetup.dialect,
      configDir: cfg.configDir,
      imageDir: image.dir,
      transport: hostSetup.transport,
      ...(manifest.firmware ? { firmware: manifest.firmware } : {}),
    },
    ...(cfg.shell ? { shell: true } : {}),
    accelerator,
    runId,
    attemptEnv: {
      outputDir: cfg.outputDir,
      journalRemote: host.journalRemote!,
      journalctl: host.journalctl!,
      env: cfg.env,
      signal: runSignal,
    },
    rerun: (spec) => rerunCommand(cfg, spec),
    onAttemptStart: (spec, n, argv) => ui.testStart(spec, n, argv),
    onAttemptEnd: (spec, a, retry) => ui.testEnd(spec, a, retry),
  };
  if (cfg.shell) ui.info(shellHelp(cfg, selected[0]!, image.dir, hostSetup.transport));
  // Longest first by known durations (else timeouts), so the run does not end on one long test alone.
  const expected = expectedSeconds(selected, cfg.durations);
  const poolStart = performance.now();
  const tests = await runPool(
    selected,
    () => slotsNow().slots,
    (t) => expected.get(t.name)!,
    async (spec) =>
      runSignal.aborted
        ? cancelledResult(spec, cfg, runSignal)
        : executeTest(spec, ctx, performance.now() - poolStart),
  );
  const finalPlan = accelerator.plan;
  const environment: Environment = {
    tool: { name: 'itest-action', version: TOOL_VERSION },
    host: { arch: host.arch, cpus: host.cpus, memTotal: host.memTotal, kernel: release() },
    mkosi: { version: mkosiVersion, dialect: hostSetup.dialect.name, command: cfg.mkosi },
    qemu: { version: host.qemu.version ?? 'unknown' },
    accel: finalPlan.accel,
    accelDetail: finalPlan.accelDetail,
    ...(accelerator.fallback
      ? {
          accelFallback: {
            ...accelerator.fallback,
            rerun: tests.filter((t) => t.attempts.some((a) => a.accel === 'kvm')).map((t) => t.name),
          },
        }
      : {}),
    transport: hostSetup.transport,
    transportDetail: hostSetup.transportDetail,
    jobs: Math.max(pool.slots, slotsNow().slots),
    timeoutScale: finalPlan.timeoutScale,
    image,
  };

  // 5. Results and reports.
  if (cfg.keep === 'failed') await dropPassingLogs(tests);
  await rm(join(cfg.outputDir, '.work'), { recursive: true, force: true });
  const results: Results = {
    version: RESULTS_VERSION,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: seconds(performance.now() - t0),
    config: { dir: cfg.configDir, manifest: cfg.manifestPath },
    environment,
    summary: summarize(tests),
    tests,
    ...(cfg.shard ? { shard: { ...cfg.shard, attempt: Number(cfg.env.GITHUB_RUN_ATTEMPT ?? 1) || 1 } } : {}),
  };
  const resultsPath = join(cfg.outputDir, 'results.json');
  const junitPath = join(cfg.outputDir, 'junit.xml');
  await writeFile(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(junitPath, renderJUnit(results));
  // KVM was required and broken: the partial results are on disk, the run ends as a host problem (exit 3).
  if (accelerator.fatal) throw accelerator.fatal;
  return { results, resultsPath, junitPath };
}

export interface Prepared {
  host: HostInfo;
  hostSetup: HostSetup;
  mkosiVersion: string;
  image: Environment['image'];
}

/** Steps 2 and 3: probe and decide the host, then restore or build the image. Also the action's prepare mode. */
export async function prepareImage(
  cfg: RunConfig,
  ui: Pick<Ui, 'info' | 'warn'>,
  deps: EngineDeps = {},
): Promise<Prepared> {
  // 2. Host.
  const host = await probeHost({
    mkosi: cfg.mkosi,
    env: cfg.env,
    checkKvm: cfg.kvm !== 'no',
    cacheDir: cfg.cacheDir,
    configDir: cfg.configDir,
  });
  const hostSetup = decideHost(host, {
    transport: cfg.transport,
    kvm: cfg.kvm,
    timeoutScale: cfg.timeoutScale,
  });
  ui.info(renderHost(host, hostSetup));
  for (const w of hostSetup.warnings) ui.warn(w);

  await mkdir(cfg.outputDir, { recursive: true });
  const mkosiVersion = host.mkosi.version!;

  // 3. Image.
  const { key } = await computeImageKey({
    configDir: cfg.configDir,
    mkosiVersion,
    arch: host.arch,
    userKey: cfg.hashKey,
    globs: cfg.hashGlobs,
    globBase: process.cwd(),
    prefix: cfg.keyPrefix,
  });
  if (cfg.expectedKey && cfg.expectedKey !== key)
    throw new UserError(
      `image key mismatch: this job computed ${key}, the prepare job ${cfg.expectedKey}. ` +
        'The jobs see a different config, mkosi version or architecture (compare `itest hash --explain` in both); ' +
        'run every job on the same runner image and mkosi release.',
      ExitCode.imageBuildFailed,
    );
  let image: Environment['image'];
  if (cfg.imageDir) {
    image = { key, cache: 'external', backend: 'none', dir: cfg.imageDir };
    ui.info(`image: using the prebuilt image in ${cfg.imageDir} (no cache, no build)`);
  } else {
    const cache: ImageCache = cfg.useCache
      ? (deps.imageCache ?? new LocalImageCache(cfg.cacheDir))
      : new ThrowawayCache(join(cfg.outputDir, '.image'));
    const buildLog = join(cfg.outputDir, 'image-build.log');
    const got = await ensureImage({
      cache,
      key,
      mkosi: cfg.mkosi,
      configDir: cfg.configDir,
      buildLog,
      env: cfg.env,
      restoreOnly: cfg.imagePolicy === 'restore-only',
      onBuildStart: (argv) =>
        ui.info(`image: cache miss for ${key}; building: ${argv.join(' ')} (log: ${buildLog})`),
    });
    image = {
      key,
      cache: cfg.useCache ? got.cache : 'disabled',
      backend: cache.backend,
      dir: got.dir,
      restoreSeconds: got.restoreSeconds,
      ...(got.buildSeconds !== undefined ? { buildSeconds: got.buildSeconds } : {}),
      ...(got.saveSeconds !== undefined ? { saveSeconds: got.saveSeconds } : {}),
    };
    ui.info(
      got.cache === 'hit'
        ? `image: cache hit for ${key} (${got.restoreSeconds} s)`
        : `image: built in ${got.buildSeconds} s and saved`,
    );
  }

  return { host, hostSetup, mkosiVersion, image };
}

/**
 * The run's Accelerator, after confirming that KVM runs the image's kernel (the empty-machine probe
 * cannot tell). A broken KVM switches the run to TCG here, before the first test, loudly; with kvm `yes`
 * it ends the run (exit 3). A VM that shows KVM broken later switches it the same way.
 */
async function settleAccelerator(
  cfg: RunConfig,
  ui: Pick<Ui, 'info' | 'warn'>,
  host: HostInfo,
  hostSetup: HostSetup,
  imageDir: string,
): Promise<Accelerator> {
  const req = { transport: cfg.transport, kvm: cfg.kvm, timeoutScale: cfg.timeoutScale };
  const confirmation =
    hostSetup.accel === 'kvm'
      ? await confirmKvm({
          qemu: host.qemu.binary,
          qemuVersion: host.qemu.version ?? 'unknown',
          imageDir,
          cacheDir: cfg.cacheDir,
        })
      : undefined;
  const accelerator = new Accelerator(hostSetup, req, (fb, plan) => {
    ui.warn(
      `KVM IS BROKEN ON THIS HOST: ${fb.test ? `the VM of ${fb.test}: ` : ''}${fb.reason}. ` +
        `Switching the whole run to software emulation (TCG): every VM from now on boots under TCG, timeouts x${plan.timeoutScale}` +
        (fb.detectedBy === 'vm' ? '; VMs that were running under KVM are stopped and rerun' : ''),
    );
    if (fb.detectedBy === 'vm') void confirmation?.remember(false, fb.reason, fb.qemuLine);
  });
  if (!confirmation) return accelerator;
  if (!confirmation.fallback) {
    ui.info(`  accel kvm confirmed: ${confirmation.detail}`);
    return accelerator;
  }
  if (accelerator.broken(confirmation.fallback) === 'stop') throw accelerator.fatal!;
  return accelerator;
}

function shellHelp(cfg: RunConfig, spec: TestSpec, imageDir: string, transport: string): string {
  const mkosi = [...cfg.mkosi, '--directory', cfg.configDir, '--output-dir', imageDir].join(' ');
  return [
    `--shell: ${spec.name} runs in a VM that stays up afterwards; this terminal is its console.`,
    `  log in as root (automatic when the image sets Autologin=yes), then e.g. \`systemctl status ${spec.unit}\`, \`journalctl -b -u ${spec.unit}\``,
    '  end the run with `systemctl poweroff` in the guest (or Ctrl-a x to stop QEMU); results are collected as usual',
    transport === 'vsock'
      ? `  from another terminal: \`${mkosi} ssh\` (the image needs mkosi's SSH key setup)`
      : '  (no vsock here, so no `mkosi ssh`: use this console)',
  ].join('\n');
}

/** --keep failed: logs of passing and skipped tests go; everything of the others stays. */
async function dropPassingLogs(tests: TestResult[]): Promise<void> {
  for (const t of tests) {
    if (t.status !== 'pass' && t.status !== 'skip') continue;
    for (const a of t.attempts) {
      if (a.status === 'pass' || a.status === 'skip') {
        for (const f of [a.files.journal, a.files.console]) if (f) await rm(f, { force: true });
        a.files = {};
      }
    }
    t.files = t.attempts[t.attempts.length - 1]?.files ?? {};
  }
}

/** --no-cache: build into the output directory every time and keep nothing. */
class ThrowawayCache implements ImageCache {
  readonly backend = 'none';
  constructor(private readonly dir: string) {}
  async restore() {
    return { hit: false, detail: 'cache disabled' };
  }
  async buildDir() {
    await rm(this.dir, { recursive: true, force: true });
    await mkdir(this.dir, { recursive: true });
    return this.dir;
  }
  async save(_key: string, dir: string) {
    return dir;
  }
}

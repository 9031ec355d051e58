/**
 * Probe and decide the host, then restore or build the image: what every run does before its first VM,
 * and all that the action's prepare mode does.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RunConfig } from '../config/run-config.ts';
import { probeHost, type HostInfo } from '../host/probe.ts';
import { decideHost, type HostRequest, type HostSetup } from '../host/decide.ts';
import { LocalBaseStore, type BaseStore } from '../image/base-store.ts';
import { ensureImage } from '../image/ensure-image.ts';
import type { ImageCache } from '../image/image-cache.ts';
import { LocalImageCache } from '../image/local-cache.ts';
import type { Environment } from '../results/model.ts';
import { renderHost } from '../results/terminal.ts';
import { OutputLayout } from '../run/output-layout.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { humanBytes } from '../util/size.ts';
import { runImageKey } from './image-key.ts';
import type { Ui } from './ui.ts';

/** What the run asks of the host, from its settings. */
export function hostRequest(cfg: RunConfig): HostRequest {
  return {
    transport: cfg.transport,
    kvm: cfg.kvm,
    door: cfg.door,
    ...(cfg.timeoutScale !== undefined ? { timeoutScale: cfg.timeoutScale } : {}),
  };
}

export interface EngineDeps {
  /** Where images are cached; default: the local directory backend (or none with useCache false). */
  imageCache?: ImageCache;
  /** Where --incremental keeps its base state; default: the cache directory (LocalBaseStore). */
  baseStore?: BaseStore;
  /** performance.now() by which every VM must have ended (`itest test --deadline`). */
  vmDeadline?: number;
}

export interface Prepared {
  host: HostInfo;
  hostSetup: HostSetup;
  mkosiVersion: string;
  image: Environment['image'];
}

export async function prepareImage(
  cfg: RunConfig,
  ui: Pick<Ui, 'info' | 'warn' | 'buildStart' | 'buildLine' | 'buildEnd'>,
  deps: EngineDeps = {},
  /** The run's cancel: stops a build at once (nothing is saved). */
  signal?: AbortSignal,
): Promise<Prepared> {
  const host = await probeHost({
    mkosi: cfg.mkosi,
    env: cfg.env,
    checkKvm: cfg.kvm !== 'no',
    cacheDir: cfg.cacheDir,
    configDir: cfg.configDir,
  });
  const hostSetup = decideHost(host, hostRequest(cfg));
  ui.info(renderHost(host, hostSetup));
  for (const w of hostSetup.warnings) ui.warn(w);

  const layout = new OutputLayout(cfg.outputDir);
  await mkdir(layout.dir, { recursive: true });
  const mkosiVersion = host.mkosi.version!;

  const { key, base: baseKey } = await runImageKey(cfg, mkosiVersion, host.arch);
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
      : new ThrowawayCache(layout.throwawayImage);
    const buildLog = layout.buildLog;
    const got = await ensureImage({
      cache,
      key,
      mkosi: cfg.mkosi,
      configDir: cfg.configDir,
      buildLog,
      env: cfg.env,
      restoreOnly: cfg.imagePolicy === 'restore-only',
      ...(signal ? { signal } : {}),
      ...(cfg.incremental && cfg.useCache
        ? {
            base: {
              store: deps.baseStore ?? new LocalBaseStore(join(cfg.cacheDir, 'base')),
              key: baseKey.key,
              prefix: baseKey.restorePrefix,
            },
          }
        : {}),
      onBuildStart: (argv) => {
        ui.info(`image: cache miss for ${key}; building: ${argv.join(' ')} (log: ${buildLog})`);
        ui.buildStart?.(argv, buildLog);
      },
      onBuildWait: (holder) =>
        ui.info(`image: another itest (process ${holder.split('-')[0]}) is building ${key}; waiting for it`),
      ...(ui.buildLine ? { onBuildLine: (line: string) => ui.buildLine?.(line) } : {}),
      ...(ui.buildEnd ? { onBuildEnd: (ok: boolean, s: number) => ui.buildEnd?.(ok, s) } : {}),
    });
    image = {
      key,
      cache: cfg.useCache ? got.cache : 'disabled',
      backend: cache.backend,
      dir: got.dir,
      restoreSeconds: got.restoreSeconds,
      ...(got.buildSeconds !== undefined ? { buildSeconds: got.buildSeconds } : {}),
      ...(got.saveSeconds !== undefined ? { saveSeconds: got.saveSeconds } : {}),
      ...(got.base ? { base: got.base } : {}),
    };
    if (got.base) ui.info(describeBase(got.base));
    ui.info(
      got.cache === 'hit'
        ? `image: cache hit for ${key} (${got.restoreSeconds} s)`
        : `image: built in ${got.buildSeconds} s and saved`,
    );
  }

  return { host, hostSetup, mkosiVersion, image };
}

/** What the incremental build started from and kept, for the run's log. Pure. */
export function describeBase(b: NonNullable<Environment['image']['base']>): string {
  const from =
    b.match === 'exact'
      ? `its base state ${b.from ?? b.key} (${humanBytes(b.restoredBytes)})`
      : b.match === 'near'
        ? `the near base state ${b.from} (${humanBytes(b.restoredBytes)}), now ${b.key}`
        : `no base state (a fresh ${b.key})`;
  return (
    `image: built incrementally from ${from}` +
    (b.backend === 'github-actions' ? ' (Actions cache)' : '') +
    (b.restoreNote && b.match === 'fresh' ? ` (${b.restoreNote})` : '') +
    (b.retriedFromScratch ? '; that build failed and the one from scratch was used' : '') +
    (b.notSaved
      ? `; base state not saved: ${b.notSaved}`
      : b.savedBytes !== undefined
        ? `; base state ${b.savedKey ? `saved as ${b.savedKey}` : 'kept'} (${humanBytes(b.savedBytes)})`
        : '') +
    (b.pruned?.length ? `; pruned ${b.pruned.join(', ')}` : '')
  );
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
  async discard(dir: string) {
    await rm(dir, { recursive: true, force: true });
  }
}

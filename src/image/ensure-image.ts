/**
 * Image step: restore by key, or build with mkosi and save. Only a failed build stops the run, or a cancel:
 * that ends the build's whole process tree at once and saves nothing; the build log stays.
 */
import { closeSync, writeSync } from 'node:fs';
import { followLines, lastLines, openBuildLog } from './build-log.ts';
import type { ImageCache } from './image-cache.ts';
import { incrementalArgs, type BaseState, type BaseStore } from './base-store.ts';
import { killTree, startDetached } from '../util/process.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { seconds } from '../util/size.ts';

/** The run was cancelled in the image step: nothing was saved (exit 130, as any cancelled run). */
export class ImageCancelled extends UserError {
  constructor(message: string) {
    super(message, ExitCode.cancelled);
    this.name = 'ImageCancelled';
  }
}

/** ` by SIGINT` when the canceller said why (stopOnSignals: `cancelled by SIGINT`; or just `SIGINT`). */
function why(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason;
  if (typeof reason !== 'string' || !reason) return '';
  return ` by ${reason.replace(/^cancelled by /, '')}`;
}

/**
 * The image build failed (mkosi exited non-zero, or could not start): the command, the log and its last
 * lines, for front doors that show more than the message.
 */
export class ImageBuildFailed extends UserError {
  constructor(
    readonly argv: string[],
    readonly log: string,
    /** mkosi's exit status; null when it died of a signal or did not start. */
    readonly code: number | null,
    readonly seconds: number,
    /** The log's last lines (up to BUILD_TAIL_LINES). */
    readonly lastLines: string[],
  ) {
    super(
      `image build failed (mkosi exit ${code ?? 'signal'}) after ${seconds} s: ${argv.join(' ')}\n` +
        `--- last lines of ${log} ---\n${lastLines.slice(-15).join('\n')}`,
      ExitCode.imageBuildFailed,
    );
    this.name = 'ImageBuildFailed';
  }
}

/** How many of the log's last lines a failed build carries. */
export const BUILD_TAIL_LINES = 50;

export interface ImageOutcome {
  dir: string;
  cache: 'hit' | 'miss';
  detail: string;
  restoreSeconds: number;
  buildSeconds?: number;
  saveSeconds?: number;
  /** --incremental: the base state the build started from and what was kept of it. */
  base?: BaseOutcome;
}

export interface BaseOutcome {
  key: string;
  /** Where the state is kept: local (the cache directory) or github-actions. */
  backend: string;
  match: BaseState['match'];
  from?: string;
  restoredBytes: number;
  restoreSeconds?: number;
  /** A restore that found something it could not use (refused, failed): then the build started fresh. */
  restoreNote?: string;
  savedBytes?: number;
  /** The key the state was saved under, when not the base key itself. */
  savedKey?: string;
  saveSeconds?: number;
  /** What was saved, when the backend says: `cache` (mkosi's trees), `packages`, `build`. */
  savedParts?: string[];
  /** Why the state was not saved. */
  notSaved?: string;
  /** The incremental build failed and the one from scratch was tried. */
  retriedFromScratch?: boolean;
  pruned?: string[];
}

/** `extra` goes before the verb: mkosi's incremental arguments (base-store.ts). */
export function buildArgv(
  mkosi: string[],
  configDir: string,
  outputDir: string,
  extra: string[] = [],
): string[] {
  return [...mkosi, '--directory', configDir, '--output-dir', outputDir, '--force', ...extra, 'build'];
}

/** Runs the build into the log at `fd`. A cancel stops it and everything it started (bwrap leaves the group). */
async function build(
  argv: string[],
  fd: number,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal | undefined,
): Promise<{ code: number | null; cancelled: boolean }> {
  const child = startDetached(argv, { env, stdio: ['ignore', fd, fd] });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('exit', (code) => resolve(code));
  });
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= killTree(child));
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const code = await exited;
    // Until the stragglers are gone too: nothing may write into the build directory once it is discarded.
    await stopping;
    return { code, cancelled: stopping !== undefined };
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}

type EnsureParams = {
  cache: ImageCache;
  key: string;
  mkosi: string[];
  configDir: string;
  buildLog: string;
  env: NodeJS.ProcessEnv;
  onBuildStart?: (argv: string[]) => void;
  /** Each line of the build's output, as it reaches the log (the log itself is written by mkosi directly). */
  onBuildLine?: (line: string) => void;
  /** The build ended: ok false when it failed or was cancelled (the error follows). */
  onBuildEnd?: (ok: boolean, seconds: number) => void;
  /** A miss is an error, never a build: shards must boot the image their prepare job built. */
  restoreOnly?: boolean;
  /** The run's cancel. */
  signal?: AbortSignal;
  /** Another process is building this image (its token): this one waits for it instead of building. */
  onBuildWait?: (holder: string) => void;
  /** --incremental: build from the base state kept under this key (and keep it after a good build). */
  base?: { store: BaseStore; key: string; prefix: string };
};

export async function ensureImage(p: EnsureParams): Promise<ImageOutcome> {
  const notBuilt = () =>
    new ImageCancelled(
      `the run was cancelled${why(p.signal)} before the image build started: nothing was built`,
    );
  if (p.signal?.aborted) throw notBuilt();
  const t0 = performance.now();
  const restored = await p.cache.restore(p.key);
  const restoreSeconds = seconds(performance.now() - t0);
  if (restored.hit && restored.dir)
    return { dir: restored.dir, cache: 'hit', detail: restored.detail, restoreSeconds };

  if (p.restoreOnly)
    throw new UserError(
      `image ${p.key} could not be restored (${restored.detail}) and this run may not build it (image policy restore-only). ` +
        'The prepare job builds and saves it: check that it succeeded and saved the image (fork pull requests cannot save caches), ' +
        'and that this job computes the same key (same config, mkosi version and architecture).',
      ExitCode.imageBuildFailed,
    );
  if (p.signal?.aborted) throw notBuilt();
  const claim = p.cache.claimBuild
    ? await p.cache
        .claimBuild(p.key, {
          ...(p.signal ? { signal: p.signal } : {}),
          ...(p.onBuildWait ? { onWait: p.onBuildWait } : {}),
        })
        .catch((e: unknown) => {
          if (p.signal?.aborted) throw notBuilt();
          throw e;
        })
    : undefined;
  if (claim && 'restored' in claim)
    return {
      dir: claim.restored.dir!,
      cache: 'hit',
      detail: `${claim.restored.detail} (built by another run while this one waited)`,
      restoreSeconds: seconds(performance.now() - t0),
    };
  try {
    return await buildAndSave(p, restored.detail, restoreSeconds);
  } finally {
    await claim?.release();
  }
}

/** A miss: build into the cache's scratch (incrementally when asked, once more from scratch if that fails), then save. */
async function buildAndSave(
  p: EnsureParams,
  missDetail: string,
  restoreSeconds: number,
): Promise<ImageOutcome> {
  const dir = await p.cache.buildDir(p.key);
  const state = p.base ? await p.base.store.restore(p.base.key, p.base.prefix) : undefined;
  const argv = buildArgv(p.mkosi, p.configDir, dir, state ? incrementalArgs(state.dir) : []);
  p.onBuildStart?.(argv);
  const t1 = performance.now();
  let ok = false;
  let buildSeconds: number | undefined;
  let retried = false;
  const fd = await openBuildLog(p.buildLog).catch((e: Error) => {
    p.onBuildEnd?.(false, 0);
    throw e;
  });
  try {
    const follower = p.onBuildLine ? followLines(fd, p.onBuildLine) : undefined;
    let ran: { code: number | null; cancelled: boolean };
    try {
      ran = await build(argv, fd, p.env, p.signal);
      // A restored state that breaks the build must not break the run: once more, from nothing.
      if (ran.code !== 0 && !ran.cancelled && !p.signal?.aborted && state && state.match !== 'fresh') {
        retried = true;
        note(
          fd,
          `\nitest: the incremental build failed (mkosi exit ${ran.code ?? 'signal'}) from the ${state.match} base state ` +
            `${state.from ?? p.base!.key}; retrying once from scratch (that state is discarded)\n`,
        );
        p.onBuildLine?.('itest: the incremental build failed; retrying once from scratch');
        await p.base!.store.wipe(state.dir);
        ran = await build(argv, fd, p.env, p.signal);
      }
    } finally {
      await follower?.stop();
    }
    buildSeconds = seconds(performance.now() - t1);
    // Also when mkosi exited 0 on its SIGTERM, or the cancel came between its exit and here.
    if (ran.cancelled || p.signal?.aborted) {
      await p.cache.discard?.(dir);
      note(fd, `\nitest: build cancelled${why(p.signal)} after ${buildSeconds} s; nothing was saved\n`);
      throw new ImageCancelled(
        `image build cancelled${why(p.signal)} after ${buildSeconds} s: its processes were stopped and nothing was saved; the build log stays in ${p.buildLog}`,
      );
    }
    if (ran.code !== 0) {
      await p.cache.discard?.(dir);
      throw new ImageBuildFailed(argv, p.buildLog, ran.code, buildSeconds, lastLines(fd, BUILD_TAIL_LINES));
    }
    ok = true;
  } finally {
    closeSync(fd);
    p.onBuildEnd?.(ok, buildSeconds ?? seconds(performance.now() - t1));
  }
  const t2 = performance.now();
  const saved = await p.cache.save(p.key, dir);
  const kept = p.base ? await p.base.store.save(p.base.key, { rebuilt: retried }) : undefined;
  return {
    dir: saved,
    cache: 'miss',
    detail: missDetail,
    restoreSeconds,
    buildSeconds,
    saveSeconds: seconds(performance.now() - t2),
    ...(state && p.base
      ? {
          base: {
            key: p.base.key,
            backend: p.base.store.backend,
            match: state.match,
            ...(state.from ? { from: state.from } : {}),
            restoredBytes: state.bytes,
            ...(state.seconds !== undefined ? { restoreSeconds: state.seconds } : {}),
            ...(state.note ? { restoreNote: state.note } : {}),
            ...(kept?.skipped
              ? { notSaved: kept.skipped }
              : kept
                ? {
                    savedBytes: kept.bytes,
                    ...(kept.savedKey ? { savedKey: kept.savedKey } : {}),
                    ...(kept.parts ? { savedParts: kept.parts } : {}),
                  }
                : {}),
            ...(kept?.seconds !== undefined ? { saveSeconds: kept.seconds } : {}),
            ...(kept ? { pruned: kept.pruned } : {}),
            ...(retried ? { retriedFromScratch: true } : {}),
          },
        }
      : {}),
  };
}

/** A line of itest's own in the build log, through the descriptor it was created with (after mkosi's bytes). */
function note(fd: number, text: string): void {
  try {
    writeSync(fd, text);
  } catch {
    // A full disk: the error that follows says it all.
  }
}

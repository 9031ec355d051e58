/**
 * Image step: restore by key, or build with mkosi and save. Only a failed build stops the run, or a cancel:
 * that ends the build's whole process tree at once and saves nothing; the build log stays.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { appendFile, readFile, rm } from 'node:fs/promises';
import type { ImageCache } from './image-cache.ts';
import { killTree, startDetached } from '../util/process.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { seconds } from '../util/size.ts';

/** The run was cancelled in the image step: nothing was saved (a failed build's exit status, 4). */
export class ImageCancelled extends UserError {
  constructor(message: string) {
    super(message, ExitCode.imageBuildFailed);
    this.name = 'ImageCancelled';
  }
}

/** ` by SIGINT` when the canceller said why (stopOnSignals: `cancelled by SIGINT`; or just `SIGINT`). */
function why(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason;
  if (typeof reason !== 'string' || !reason) return '';
  return ` by ${reason.replace(/^cancelled by /, '')}`;
}

/** Opens the build log fresh: an entry already there (a file, or a link someone planted) is replaced, never followed. */
async function openLog(logFile: string): Promise<number> {
  await rm(logFile, { force: true });
  return openSync(logFile, 'wx', 0o644);
}

export interface ImageOutcome {
  dir: string;
  cache: 'hit' | 'miss';
  detail: string;
  restoreSeconds: number;
  buildSeconds?: number;
  saveSeconds?: number;
}

export function buildArgv(mkosi: string[], configDir: string, outputDir: string): string[] {
  return [...mkosi, '--directory', configDir, '--output-dir', outputDir, '--force', 'build'];
}

/** Runs the build into logFile. A cancel stops it and everything it started (bwrap leaves the group). */
async function build(
  argv: string[],
  logFile: string,
  env: NodeJS.ProcessEnv,
  signal: AbortSignal | undefined,
): Promise<{ code: number | null; cancelled: boolean }> {
  const fd = await openLog(logFile);
  try {
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
  } finally {
    closeSync(fd);
  }
}

export async function ensureImage(p: {
  cache: ImageCache;
  key: string;
  mkosi: string[];
  configDir: string;
  buildLog: string;
  env: NodeJS.ProcessEnv;
  onBuildStart?: (argv: string[]) => void;
  /** A miss is an error, never a build: shards must boot the image their prepare job built. */
  restoreOnly?: boolean;
  /** The run's cancel. */
  signal?: AbortSignal;
}): Promise<ImageOutcome> {
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
  const dir = await p.cache.buildDir(p.key);
  const argv = buildArgv(p.mkosi, p.configDir, dir);
  p.onBuildStart?.(argv);
  const t1 = performance.now();
  const { code, cancelled } = await build(argv, p.buildLog, p.env, p.signal);
  const buildSeconds = seconds(performance.now() - t1);
  // Also when mkosi exited 0 on its SIGTERM, or the cancel came between its exit and here.
  if (cancelled || p.signal?.aborted) {
    await p.cache.discard?.(dir);
    await appendFile(
      p.buildLog,
      `\nitest: build cancelled${why(p.signal)} after ${buildSeconds} s; nothing was saved\n`,
      { flag: constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW },
    ).catch(() => {});
    throw new ImageCancelled(
      `image build cancelled${why(p.signal)} after ${buildSeconds} s: its processes were stopped and nothing was saved; the build log stays in ${p.buildLog}`,
    );
  }
  if (code !== 0) {
    await p.cache.discard?.(dir);
    const log = await readFile(p.buildLog, 'utf8').catch(() => '');
    const tail = log.trim().split('\n').slice(-15).join('\n');
    throw new UserError(
      `image build failed (mkosi exit ${code ?? 'signal'}) after ${buildSeconds} s: ${argv.join(' ')}\n` +
        `--- last lines of ${p.buildLog} ---\n${tail}`,
      ExitCode.imageBuildFailed,
    );
  }
  const t2 = performance.now();
  const saved = await p.cache.save(p.key, dir);
  return {
    dir: saved,
    cache: 'miss',
    detail: restored.detail,
    restoreSeconds,
    buildSeconds,
    saveSeconds: seconds(performance.now() - t2),
  };
}

/** Image step: restore by key, or build with mkosi and save. Only a failed build stops the run. */
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ImageCache } from './image-cache.ts';
import { startDetached } from '../util/process.ts';
import { ExitCode, UserError } from '../util/errors.ts';
import { seconds } from '../util/size.ts';

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

async function build(argv: string[], logFile: string, env: NodeJS.ProcessEnv): Promise<number | null> {
  const fd = openSync(logFile, 'w');
  try {
    const child = startDetached(argv, { env, stdio: ['ignore', fd, fd] });
    return await new Promise((resolve) => {
      child.on('error', () => resolve(null));
      child.on('exit', (code) => resolve(code));
    });
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
}): Promise<ImageOutcome> {
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
  const dir = await p.cache.buildDir(p.key);
  const argv = buildArgv(p.mkosi, p.configDir, dir);
  p.onBuildStart?.(argv);
  const t1 = performance.now();
  const code = await build(argv, p.buildLog, p.env);
  const buildSeconds = seconds(performance.now() - t1);
  if (code !== 0) {
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

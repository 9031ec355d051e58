/** Computes the image cache key for a config directory (the `itest hash` command and the run both use it). */
import { collectConfigInputs, collectExtraInputs } from '../image/hash-inputs.ts';
import { imageKey, type HashInputLine } from '../image/config-hash.ts';
import type { RunConfig } from '../config/run-config.ts';

export async function computeImageKey(p: {
  configDir: string;
  mkosiVersion: string;
  arch: string;
  userKey: string;
  globs: string[];
  globBase: string;
  prefix: string;
}): Promise<{ key: string; digest: string; lines: HashInputLine[] }> {
  const files = [
    ...(await collectConfigInputs(p.configDir)),
    ...(await collectExtraInputs(p.globBase, p.globs)),
  ];
  return imageKey(files, {
    mkosiVersion: p.mkosiVersion,
    architecture: p.arch,
    userKey: p.userKey,
    prefix: p.prefix,
  });
}

/** The key of a run's image: its config's settings, this mkosi and this architecture. */
export function runImageKey(
  cfg: Pick<RunConfig, 'configDir' | 'hashKey' | 'hashGlobs' | 'keyPrefix'>,
  mkosiVersion: string,
  arch: string,
): Promise<{ key: string; digest: string; lines: HashInputLine[] }> {
  return computeImageKey({
    configDir: cfg.configDir,
    mkosiVersion,
    arch,
    userKey: cfg.hashKey,
    globs: cfg.hashGlobs,
    // --hash-glob patterns are relative to where itest runs.
    globBase: process.cwd(),
    prefix: cfg.keyPrefix,
  });
}

/** Computes the image cache key for a config directory (the `itest hash` command and the run both use it). */
import { collectConfigInputs, collectExtraInputs } from '../image/hash-inputs.ts';
import { imageKey, type HashInputLine } from '../image/config-hash.ts';

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

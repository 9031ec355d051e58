/**
 * Computes the cache keys of a config directory (the `itest hash` command and the run both use them): the
 * image key over every input, and the base key over what decides the image's base (base-key.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectConfigInputs, collectExtraInputs } from '../image/hash-inputs.ts';
import { imageKey, type HashInputLine } from '../image/config-hash.ts';
import { baseKey, inputRole, type BaseKey } from '../image/base-key.ts';
import type { RunConfig } from '../config/run-config.ts';

export interface ImageKeys {
  key: string;
  digest: string;
  lines: HashInputLine[];
  base: BaseKey;
}

export async function computeImageKey(p: {
  configDir: string;
  mkosiVersion: string;
  arch: string;
  userKey: string;
  globs: string[];
  globBase: string;
  prefix: string;
}): Promise<ImageKeys> {
  const files = [
    ...(await collectConfigInputs(p.configDir)),
    ...(await collectExtraInputs(p.globBase, p.globs)),
  ];
  const meta = { mkosiVersion: p.mkosiVersion, architecture: p.arch, userKey: p.userKey, prefix: p.prefix };
  // The config files' text, for their base settings (they were just read for their digests).
  const texts = new Map(
    files
      .filter((f) => f.kind === 'file' && inputRole(f.path) === 'conf')
      .map((f) => [f.path, readFileSync(join(p.configDir, f.path), 'utf8')] as const),
  );
  return { ...imageKey(files, meta), base: baseKey(files, texts, meta) };
}

/** The key of a run's image: its config's settings, this mkosi and this architecture. */
export function runImageKey(
  cfg: Pick<RunConfig, 'configDir' | 'hashKey' | 'hashGlobs' | 'keyPrefix'>,
  mkosiVersion: string,
  arch: string,
): Promise<ImageKeys> {
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

/**
 * `itest hash --explain`: every input once, marked with the keys it belongs to (`image`, `base`), in the
 * image key's order; a config file's base settings follow it. Pure.
 */
export function explainLines(k: ImageKeys): string[] {
  const inBase = new Set(k.base.lines.map((l) => `${l.kind}\0${l.name}\0${l.value}`));
  const settingsOf = (path: string) =>
    k.base.lines.filter((l) => l.kind === 'setting' && l.name.startsWith(`${path} [`));
  const out: string[] = [];
  const row = (keys: string, l: HashInputLine) =>
    `${keys.padEnd(10)} ${l.kind.padEnd(7)} ${l.name}  ${l.value.replace(/\n/g, ' ')}`;
  for (const l of k.lines) {
    out.push(row(inBase.has(`${l.kind}\0${l.name}\0${l.value}`) ? 'image base' : 'image', l));
    for (const b of l.kind === 'file' ? settingsOf(l.name) : []) out.push(row('      base', b));
  }
  return out;
}

/**
 * The base key: a second cache key, over what decides the *base* of the image (what mkosi's incremental
 * cache holds, the tree after package installation and the prepare scripts, and what its package cache
 * holds): distribution, release, architecture, repositories and mirrors, package lists, package manager
 * and sandbox trees, skeleton trees, prepare scripts, the tools tree, mkosi's version. Not mkosi.extra/,
 * the build, postinst and finalize scripts or the project's sources, which change with every push. Pure.
 *
 * A base key that is too coarse only costs cache hits; one that is too fine costs nothing in correctness
 * either: mkosi checks its own cache against the config before it uses it, so a restored base that does
 * not fit is rebuilt, never used.
 */
import type { FileInput } from './hash-inputs.ts';
import type { HashInputLine, HashMeta } from './config-hash.ts';
import { byPath, digestLines, fileLine, metaLines } from './config-hash.ts';
import { parseMkosiIni } from './mkosi-ini.ts';

/** Config sections that belong to the base whole, and the base settings of the others. */
const BASE_SECTIONS = new Set(['Distribution', 'Match', 'TriggerMatch', 'Assert', 'Config', 'Include']);
const BASE_SETTINGS = new Set([
  // [Content]: what is installed before the cache is taken (VolatilePackages= come after it).
  'Packages',
  'BuildPackages',
  'PackageDirectories',
  'WithRecommends',
  'WithDocs',
  'BaseTrees',
  'SkeletonTrees',
  'PrepareScripts',
  // [Build] and [Distribution] of older mkosi: the trees and tools the package manager runs with.
  'PackageManagerTrees',
  'SandboxTrees',
  'Incremental',
  'Environment',
  'EnvironmentFiles',
  'ToolsTree',
  'ToolsTreeDistribution',
  'ToolsTreeRelease',
  'ToolsTreeProfiles',
  'ToolsTreeMirror',
  'ToolsTreeRepositories',
  'ToolsTreeSandboxTrees',
  'ToolsTreePackageManagerTrees',
  'ToolsTreePackages',
  'ToolsTreePackageDirectories',
  'ToolsTreeCertificates',
]);

/** Files mkosi reads whole before or while it installs packages. */
const BASE_FILE =
  /^mkosi\.(pkgmngr|sandbox|tools\.conf|packages|prepare|prepare\.chroot|prepare\.d|skeleton|skeleton\.tar(\.[a-z0-9]+)?|env|configure)(\/|$)/;

export type InputRole = 'conf' | 'base' | 'image';

/**
 * What an input of the image key is to the base key: a config file (its base settings count), a file
 * that counts whole, or nothing. Subimages (`mkosi.images/NAME/`), drop-in directories and profiles hold
 * the same layout one level down.
 */
export function inputRole(path: string): InputRole {
  if (path.startsWith('extra:')) return 'image';
  const nested = /^mkosi\.(images|conf\.d|profiles)\/[^/]+\/(.+)$/.exec(path);
  if (nested) return inputRole(nested[2]!);
  if (/^mkosi\.(conf\.d|profiles)\/[^/]+\.conf$/.test(path)) return 'conf';
  if (path === 'mkosi.conf' || path === 'mkosi.local.conf') return 'conf';
  return BASE_FILE.test(path) ? 'base' : 'image';
}

export interface BaseKey {
  key: string;
  /** Any earlier base of this architecture and mkosi version: a near match is worth restoring here. */
  restorePrefix: string;
  digest: string;
  lines: HashInputLine[];
}

/** The base key from the image key's file inputs and the text of its config files (path -> text). */
export function baseKey(files: FileInput[], confTexts: ReadonlyMap<string, string>, meta: HashMeta): BaseKey {
  const lines = metaLines('itest-base-key/1', meta);
  for (const f of byPath(files)) {
    const role = inputRole(f.path);
    if (role === 'conf' && f.kind === 'file') {
      for (const a of parseMkosiIni(confTexts.get(f.path) ?? '')) {
        if (BASE_SECTIONS.has(a.section) || BASE_SETTINGS.has(a.key))
          lines.push({ kind: 'setting', name: `${f.path} [${a.section}] ${a.key}`, value: a.value });
      }
    } else if (role === 'base') lines.push(fileLine(f));
  }
  const digest = digestLines(lines);
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
  const restorePrefix = `${clean(meta.prefix)}-base-${clean(meta.architecture)}-mkosi${clean(meta.mkosiVersion)}-`;
  return { key: `${restorePrefix}${digest.slice(0, 32)}`, restorePrefix, digest, lines };
}

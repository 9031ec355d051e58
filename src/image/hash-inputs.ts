/**
 * Collects what the image depends on: every file mkosi reads from the config directory (path relative to
 * the config dir, executable bit, content digest or symlink target) plus files from user globs.
 */
import { createHash } from 'node:crypto';
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { glob } from 'glob';

export interface FileInput {
  /** Path relative to the config directory (POSIX separators), or `extra:<path>` for user globs. */
  path: string;
  kind: 'file' | 'symlink' | 'dir';
  /** Executable bit only: git records nothing else, so finer modes differ between checkouts. */
  executable: boolean;
  /** sha256 of the content (files) or the link target (symlinks); empty for directories. */
  digest: string;
}

/**
 * Names mkosi reads from a config directory (background.md), with the suffixes it accepts.
 * Outputs, caches and VCS directories never match.
 */
const MKOSI_NAME =
  /^mkosi\.(conf|conf\.d|images|profiles|local\.conf|local|tools\.conf|version|extra|skeleton|sandbox|pkgmngr|repart|packages|prepare|build|postinst|finalize|postoutput|sync|configure|clean|uki-profiles|key|crt|env|credentials|passphrase|rootpw|nspawn|initrd|presets)(\.tar(\.[a-z0-9]+)?|\.chroot|\.d)?$/;
const IGNORED_DIRS = new Set([
  '.git',
  '.hg',
  '.svn',
  'mkosi.output',
  'mkosi.cache',
  'mkosi.builddir',
  'mkosi.workspace',
  'mkosi.tools',
  'mkosi.pkgcache',
  'node_modules',
]);

export function isMkosiInput(name: string): boolean {
  return MKOSI_NAME.test(name) && !IGNORED_DIRS.has(name);
}

// Synchronous on purpose: nothing else runs while the key is computed, and for 20,000 small files the
// thread-pool round trips of the async calls cost 5-10x the hashing itself (bench/config-hash.ts).
const CHUNK = Buffer.allocUnsafe(1 << 20);

/** sha256 of a file read in 1 MiB chunks: constant memory whatever the file's size. */
function hashFile(abs: string): string {
  const h = createHash('sha256');
  const fd = openSync(abs, 'r');
  try {
    for (
      let n = readSync(fd, CHUNK, 0, CHUNK.length, null);
      n > 0;
      n = readSync(fd, CHUNK, 0, CHUNK.length, null)
    )
      h.update(CHUNK.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function describe(abs: string, rel: string, out: FileInput[]): void {
  const st = lstatSync(abs);
  if (st.isSymbolicLink()) {
    out.push({ path: rel, kind: 'symlink', executable: false, digest: sha256(readlinkSync(abs)) });
  } else if (st.isDirectory()) {
    out.push({ path: rel, kind: 'dir', executable: false, digest: '' });
    for (const e of readdirSync(abs).sort()) {
      if (IGNORED_DIRS.has(e)) continue;
      describe(join(abs, e), `${rel}/${e}`, out);
    }
  } else if (st.isFile()) {
    out.push({ path: rel, kind: 'file', executable: (st.mode & 0o111) !== 0, digest: hashFile(abs) });
  }
}

/** Every mkosi input under configDir (and its `mkosi/` subdirectory when the config lives there). */
export async function collectConfigInputs(configDir: string): Promise<FileInput[]> {
  const out: FileInput[] = [];
  for (const name of (await readdir(configDir)).sort()) {
    if (isMkosiInput(name)) describe(join(configDir, name), name, out);
  }
  return out;
}

/** Files matched by user globs (relative to baseDir), e.g. the project's sources that the build script compiles. */
export async function collectExtraInputs(baseDir: string, patterns: string[]): Promise<FileInput[]> {
  const out: FileInput[] = [];
  const seen = new Set<string>();
  for (const pattern of patterns) {
    for (const match of (
      await glob(pattern, { cwd: baseDir, dot: true, ignore: ['**/.git/**', '**/node_modules/**'] })
    ).sort()) {
      const rel = relative(baseDir, resolve(baseDir, match)).split(sep).join('/');
      if (seen.has(`extra:${rel}`)) continue;
      const sub: FileInput[] = [];
      describe(resolve(baseDir, match), `extra:${rel}`, sub);
      // `src/**` matches `src` and each file in it: a directory's walk already brought its files.
      for (const f of sub) {
        if (seen.has(f.path)) continue;
        seen.add(f.path);
        out.push(f);
      }
    }
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

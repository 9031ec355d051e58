/**
 * Where a test lives in the repository, for annotations and JUnit `file`/`line`: its unit file (or
 * template) in the config's mkosi.extra/, else its `name:` entry in the manifest. Paths are relative
 * to the workspace (the repository checkout), '/'-separated. Reads the file system; the check run and
 * the JUnit writer both use it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';

/** A path relative to the repository root and a 1-based line. */
export interface TestLocation {
  path: string;
  line: number;
}

/** A path relative to the workspace, '/'-separated; undefined when outside it. */
export function workspacePath(path: string, workspace: string): string | undefined {
  const rel = relative(resolve(workspace), resolve(workspace, path));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return undefined;
  return rel.split(sep).join('/');
}

/** The line of a test's `name:` entry in the manifest text (1-based), if it is listed. */
export function manifestLine(text: string, name: string): number | undefined {
  const quoted = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^\\s*(?:-\\s+)?name:\\s*(['"]?)${quoted}\\1\\s*(?:#.*)?$`);
  const i = text.split(/\r?\n/).findIndex((l) => re.test(l));
  return i < 0 ? undefined : i + 1;
}

const UNIT_DIRS = ['usr/lib/systemd/system', 'etc/systemd/system', 'lib/systemd/system'];

/**
 * Each test's unit file in `config.dir`/mkosi.extra/ (line 1; extra trees are not in the results, so
 * not searched), else its manifest entry, when that file is inside the workspace. Tests found in
 * neither are left out, or with `manifestFallback` put on the manifest's line 1 (when it is inside).
 */
export function locateTests(
  config: { dir: string; manifest: string },
  tests: readonly { name: string; unit: string }[],
  workspace: string,
  opts: { manifestFallback?: boolean } = {},
): Map<string, TestLocation> {
  const out = new Map<string, TestLocation>();
  let manifest: string | undefined;
  try {
    manifest = readFileSync(resolve(workspace, config.manifest), 'utf8');
  } catch {
    manifest = undefined;
  }
  const manifestRel = workspacePath(config.manifest, workspace);
  for (const t of tests) {
    // An instance (foo@bar.service) may only exist as its template (foo@.service).
    const names = [t.unit, t.unit.replace(/@[^@/]+(\.[^./]+)$/, '@$1')];
    const unitFile = UNIT_DIRS.flatMap((d) =>
      names.map((n) => join(resolve(workspace, config.dir), 'mkosi.extra', d, n)),
    ).find((f) => existsSync(f));
    const unitRel = unitFile ? workspacePath(unitFile, workspace) : undefined;
    if (unitRel) {
      out.set(t.name, { path: unitRel, line: 1 });
      continue;
    }
    const line = manifest !== undefined ? manifestLine(manifest, t.name) : undefined;
    if (manifestRel && (line || opts.manifestFallback))
      out.set(t.name, { path: manifestRel, line: line ?? 1 });
  }
  return out;
}

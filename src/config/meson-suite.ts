/**
 * Imports a meson-registered suite: the tests of `meson introspect --tests` (run on a build directory, or
 * read from a saved JSON file) whose command is systemd's integration-test-wrapper.py (or itest), as
 * TestSpecs (wrapper-args.ts maps each argument vector). Errors name the build directory or file, the
 * test and the argument.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { readInputFile, parseJsonInput } from './input-file.ts';
import { INPUT_LIMITS } from './settings.ts';
import type { TestSpec } from './test-spec.ts';
import { isItestTest, isWrapperTest, wrapperTestSpec, type MesonTest } from './wrapper-args.ts';
import { discoveredUnitProblem, nameCollisions } from './test-names.ts';
import { runCommand } from '../util/process.ts';
import { UserError } from '../util/errors.ts';

/** systemd's full introspection is 0.9 MB for 1,608 tests; a cap far above it. */
const MAX_INTROSPECTION_BYTES = 64 * 1024 ** 2;

const FIX =
  'Fix: pass a meson build directory (after `meson setup`) or the JSON `meson introspect --tests` printed';

/** The introspection's test list, checked for the fields itest reads. Pure. */
export function parseIntrospection(text: string, origin: string): MesonTest[] {
  const data = parseJsonInput(text, origin, FIX);
  if (!Array.isArray(data)) throw new UserError(`${origin}: not a list of tests. ${FIX}`);
  return data.map((t: unknown, i) => {
    const o = (t ?? {}) as Record<string, unknown>;
    const bad = (field: string) =>
      new UserError(
        `${origin}: test [${i}]${typeof o.name === 'string' ? ` (${o.name})` : ''}: ${field}. ${FIX}`,
      );
    if (typeof o.name !== 'string') throw bad('no "name"');
    if (!Array.isArray(o.cmd) || o.cmd.length === 0 || !o.cmd.every((c) => typeof c === 'string'))
      throw bad('"cmd" is not a list of strings');
    if (typeof o.timeout !== 'number' || !Number.isFinite(o.timeout)) throw bad('"timeout" is not a number');
    const suite = Array.isArray(o.suite) ? o.suite.filter((s): s is string => typeof s === 'string') : [];
    const env = o.env && typeof o.env === 'object' ? (o.env as Record<string, string>) : {};
    return {
      name: o.name,
      cmd: o.cmd as string[],
      timeout: o.timeout,
      suite,
      workdir: typeof o.workdir === 'string' ? o.workdir : null,
      env,
    };
  });
}

/** meson test's --suite: `S` matches `S` itself and `<project>:S`. */
export function inSuite(t: Pick<MesonTest, 'suite'>, suite: string | undefined): boolean {
  return suite === undefined || t.suite.some((s) => s === suite || s.endsWith(`:${suite}`));
}

export interface MesonSuite {
  /** The build directory or file the tests came from (for messages and the synthetic manifest path). */
  origin: string;
  tests: TestSpec[];
  /** The wrappers' --meson-source-dir (the first test's), where the mkosi config is looked for. */
  sourceDir?: string;
  /** Wrapper tests of other suites and tests of other commands that were left out. */
  ignored: number;
}

/**
 * The wrapper tests of an introspection as TestSpecs, in meson's order. `readFile` reads a credential
 * file (mkosi's --credential PATH: the name is the file's). Pure but for that reader.
 */
export function suiteFromTests(
  all: readonly MesonTest[],
  o: { origin: string; suite?: string; cwd: string; now: Date; readFile: (path: string) => string },
): MesonSuite {
  const chosen = all.filter((t) => isWrapperTest(t) && inSuite(t, o.suite));
  if (chosen.length === 0 && all.some((t) => isItestTest(t) && inSuite(t, o.suite)))
    // Their tests are a manifest's already: importing them would only run the same tests through a detour.
    throw new UserError(
      `${o.origin}: the tests${o.suite ? ` of suite "${o.suite}"` : ''} run itest itself (\`itest test NAME\`), not integration-test-wrapper.py. Fix: run \`itest run --config <the --config they pass>\`, or \`meson test\` as they are registered`,
    );
  if (chosen.length === 0) {
    const suites = [...new Set(all.filter(isWrapperTest).flatMap((t) => t.suite))];
    throw new UserError(
      `${o.origin}: no test runs integration-test-wrapper.py${o.suite ? ` in suite "${o.suite}"` : ''} (of ${all.length} tests${suites.length ? `; wrapper suites: ${suites.join(', ')}` : ''}). Fix: ${o.suite ? 'pick one of those suites' : 'configure with the integration tests enabled (systemd: -Dintegration-tests=true)'}`,
    );
  }
  if (chosen.length > INPUT_LIMITS.tests)
    throw new UserError(
      `${o.origin}: ${chosen.length} tests are more than the ${INPUT_LIMITS.tests} itest runs`,
    );
  let sourceDir: string | undefined;
  const tests = chosen.map((t) => {
    let imported;
    try {
      imported = wrapperTestSpec(t, o.cwd, o.now);
    } catch (e) {
      throw new UserError(
        `${o.origin}: ${(e as Error).message}. Fix: update itest, or change the test's registration in meson.build`,
      );
    }
    // Names become file and machine names: the rules of a discovered unit's name hold here too.
    const bad =
      discoveredUnitProblem(`${imported.spec.name}.service`) ?? discoveredUnitProblem(imported.spec.unit);
    if (bad) throw new UserError(`${o.origin}: test ${t.name}: ${bad}`);
    sourceDir ??= imported.sourceDir;
    for (const f of imported.credentialFiles) {
      let value: string;
      try {
        value = o.readFile(f);
      } catch (e) {
        throw new UserError(
          `${o.origin}: test ${imported.spec.name}: --credential ${f}: ${(e as Error).message}. Fix: run from the build directory meson configured, or regenerate it`,
        );
      }
      imported.spec.credentials[basename(f)] = value;
    }
    return imported.spec;
  });
  const collisions = nameCollisions(tests.map((t) => t.name));
  if (collisions.length > 0) throw new UserError(`${o.origin}: ${collisions.join('; ')}`);
  return {
    origin: o.origin,
    tests,
    ...(sourceDir ? { sourceDir } : {}),
    ignored: all.length - chosen.length,
  };
}

/** `meson introspect --tests DIR`'s output, or the saved JSON file. */
export async function readIntrospection(path: string, meson = 'meson'): Promise<string> {
  if (!existsSync(path)) throw new UserError(`--meson-build-dir ${path}: no such file or directory. ${FIX}`);
  if (statSync(path).isFile())
    return readInputFile(path, MAX_INTROSPECTION_BYTES, 'meson test introspection');
  const r = await runCommand([meson, 'introspect', '--tests', path], { timeoutMs: 120_000 });
  if (r.spawnError)
    throw new UserError(
      `--meson-build-dir ${path}: cannot run ${meson}: ${r.spawnError.message}. Fix: install meson (apt-get install meson), or pass the JSON of \`meson introspect --tests\``,
    );
  if (r.code !== 0)
    throw new UserError(
      `--meson-build-dir ${path}: \`${meson} introspect --tests\` failed (${r.code ?? r.signal}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}. ${FIX}`,
    );
  return r.stdout;
}

/** Reads and imports a meson suite from a build directory or a saved introspection. */
export async function loadMesonSuite(path: string, o: { suite?: string; now?: Date }): Promise<MesonSuite> {
  const text = await readIntrospection(path);
  const all = parseIntrospection(text, path);
  // meson runs a test without a workdir in the build directory: relative credential paths start there.
  const cwd = statSync(path).isFile() ? dirname(path) : path;
  return suiteFromTests(all, {
    origin: path,
    ...(o.suite ? { suite: o.suite } : {}),
    cwd,
    now: o.now ?? new Date(),
    readFile: (f) => readFileSync(f, 'utf8'),
  });
}

/**
 * The mkosi config of a meson build directory: its source directory (meson-info/meson-info.json) or one of
 * up to three parents holding mkosi/mkosi.conf, the way systemd's wrapper looks. Undefined when none is
 * found or the path is a saved introspection (which names no source directory of its own).
 */
export function mesonMkosiDir(buildDir: string): string | undefined {
  const info = join(buildDir, 'meson-info', 'meson-info.json');
  if (!existsSync(info)) return undefined;
  let source: unknown;
  try {
    source = (JSON.parse(readFileSync(info, 'utf8')) as { directories?: { source?: unknown } }).directories
      ?.source;
  } catch {
    return undefined;
  }
  if (typeof source !== 'string') return undefined;
  let dir = resolve(source);
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'mkosi', 'mkosi.conf'))) return join(dir, 'mkosi');
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return undefined;
}

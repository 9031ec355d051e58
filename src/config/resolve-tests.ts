/** Turns a manifest plus discovered units into resolved TestSpecs, and selects by name/glob/tag. Pure. */
import { minimatch } from 'minimatch';
import type { Manifest, ManifestSettings, ManifestTest } from './manifest.ts';
import { TEST_DEFAULTS, type TestSpec } from './test-spec.ts';
import { parseSize } from '../util/size.ts';
import { UserError } from '../util/errors.ts';
import { INPUT_LIMITS, SETTINGS, spell, type FrontDoor } from './settings.ts';
import { discoveredUnitProblem, discoveredUnitsFix, nameCollisions } from './test-names.ts';

const splitCmdline = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean);

function resolveSpec(
  t: ManifestTest,
  d: ManifestSettings,
  source: TestSpec['source'],
  manifestPath: string,
): TestSpec {
  const pick = <K extends keyof ManifestSettings>(k: K): ManifestSettings[K] =>
    t[k] !== undefined ? t[k] : d[k];
  const ramSetting = pick('ram');
  const ram = ramSetting === undefined ? TEST_DEFAULTS.ram : parseSize(ramSetting);
  if (ram === undefined)
    throw new UserError(
      `${manifestPath}: test ${t.name}: ram ${JSON.stringify(ramSetting)} is not a size; use e.g. 1G or 1536M`,
    );
  const cpus = pick('cpus');
  const timeout = pick('timeout') ?? TEST_DEFAULTS.timeout;
  // The schema bounds it too; this holds for manifests built in code.
  const { min, max } = SETTINGS.timeout.bounds;
  if (!(timeout >= min && timeout <= max))
    throw new UserError(
      `${manifestPath}: test ${t.name}: timeout ${timeout} must be a number of seconds from ${min} to ${max}`,
    );
  const spec: TestSpec = {
    name: t.name,
    unit: t.unit ?? `${t.name}.service`,
    timeout,
    exitStatus: pick('exit-status') ?? TEST_DEFAULTS.exitStatus,
    skipStatus: pick('skip-status') ?? TEST_DEFAULTS.skipStatus,
    shouldFail: pick('should-fail') ?? false,
    // Defaults and per-test values add up for lists and maps: a test extends the defaults, it does not replace them.
    kernelCmdline: [...splitCmdline(d['kernel-cmdline']), ...splitCmdline(t['kernel-cmdline'])],
    credentials: { ...(d.credentials ?? {}), ...(t.credentials ?? {}) },
    mkosiArgs: [...(d['mkosi-args'] ?? []), ...(t['mkosi-args'] ?? [])],
    qemuArgs: [...(d['qemu-args'] ?? []), ...(t['qemu-args'] ?? [])],
    ram,
    retries: pick('retries') ?? TEST_DEFAULTS.retries,
    infraRetries: pick('infra-retries') ?? TEST_DEFAULTS.infraRetries,
    tags: [...new Set([...(d.tags ?? []), ...(t.tags ?? [])])],
    failOnCoredump: pick('fail-on-coredump') ?? true,
    source,
  };
  const exclude = pick('coredump-exclude');
  if (exclude !== undefined) spec.coredumpExclude = exclude;
  if (cpus !== undefined) spec.cpus = cpus;
  if (t.description !== undefined) spec.description = t.description;
  return spec;
}

/**
 * All tests of a manifest: listed tests in manifest order, then discovered units (sorted) that no listed
 * test already covers. A listed test whose unit was discovered refines the discovered one.
 */
export function resolveTests(manifest: Manifest, unitFiles: string[]): TestSpec[] {
  const listed = manifest.tests.map((t) => resolveSpec(t, manifest.defaults, 'manifest', manifest.path));
  const covered = new Set(listed.map((t) => t.unit));
  const names = new Set(listed.map((t) => t.name));
  const out = [...listed];
  if (manifest.discover) {
    const { units, exclude } = manifest.discover;
    const found = unitFiles.filter(
      (u) =>
        u.endsWith('.service') && units.some((g) => minimatch(u, g)) && !exclude.some((g) => minimatch(u, g)),
    );
    const fresh = found.filter((u) => !covered.has(u) && !names.has(u.replace(/\.service$/, '')));
    if (listed.length + fresh.length > INPUT_LIMITS.tests)
      throw new UserError(
        `${manifest.path}: discover: ${fresh.length} discovered and ${listed.length} listed tests are more than the ${INPUT_LIMITS.tests} itest runs. Fix: narrow discover.units or add discover.exclude`,
      );
    // A discovered unit's name is checked as a listed test's is by the schema: it goes into the same places.
    const badUnits = fresh.filter((u) => discoveredUnitProblem(u) !== undefined);
    if (badUnits.length > 0)
      throw new UserError(
        `${manifest.path}: discover: ${badUnits.length} discovered unit${badUnits.length > 1 ? 's' : ''} cannot be ${badUnits.length > 1 ? 'tests' : 'a test'}:\n` +
          `${badUnits.map((u) => `  ${discoveredUnitProblem(u)!}\n`).join('')}${discoveredUnitsFix(badUnits)}`,
      );
    for (const unit of fresh)
      out.push(
        resolveSpec(
          { name: unit.replace(/\.service$/, ''), unit },
          manifest.defaults,
          'discovered',
          manifest.path,
        ),
      );
    for (const t of listed) if (found.includes(t.unit)) t.source = 'discovered';
  }
  const collisions = nameCollisions(out.map((t) => t.name));
  if (collisions.length > 0)
    throw new UserError(
      `${manifest.path}: ${collisions.join('; ')}. Fix: rename one of each pair (or leave one out with discover.exclude)`,
    );
  return out;
}

export interface Selection {
  tests: string[];
  tags: string[];
}

/** --tag values split: `T` a test must carry, `!T` one it must not. */
export function parseTags(tags: string[], door: FrontDoor = 'cli'): { include: string[]; exclude: string[] } {
  const include: string[] = [];
  const exclude: string[] = [];
  for (const t of tags) {
    const name = t.startsWith('!') ? t.slice(1).trim() : t;
    if (!name || name.startsWith('!'))
      throw new UserError(
        `${spell(door, 'tags', t)}: not a tag. Fix: write a tag (smoke) or a tag to leave out (!slow)`,
      );
    (t.startsWith('!') ? exclude : include).push(name);
  }
  return { include, exclude };
}

/**
 * Keeps the tests whose name (or unit) matches any --test NAME|GLOB, which carry every --tag T and none
 * of the --tag !T. A --test pattern that matches nothing is an error: a typo must not turn into an empty
 * green run; so is a !T no test carries: a typo must not quietly run the tests it meant to leave out.
 */
export function selectTests(all: TestSpec[], sel: Selection, door: FrontDoor = 'cli'): TestSpec[] {
  const test = (p: string) => spell(door, 'tests', p);
  const tag = (t: string) => spell(door, 'tags', t);
  for (const p of sel.tests) {
    // minimatch throws on patterns over 64 KiB; no test name is longer than 100 characters anyway.
    if (p.length > 1000)
      throw new UserError(
        `${test(p.slice(0, 40))}...: a pattern of ${p.length} characters matches no test name`,
      );
    if (!all.some((t) => matchesName(t, p))) {
      throw new UserError(
        `${test(p)}: no such test. Known tests: ${all.map((t) => t.name).join(', ') || '(none)'}`,
      );
    }
  }
  const { include, exclude } = parseTags(sel.tags, door);
  const known = [...new Set(all.flatMap((t) => t.tags))];
  for (const x of exclude)
    if (!known.includes(x))
      throw new UserError(
        `${tag(`!${x}`)}: no test carries tag ${x}, so it leaves nothing out. Known tags: ${known.join(', ') || '(none)'}`,
      );
  const picked = all.filter(
    (t) =>
      (sel.tests.length === 0 || sel.tests.some((p) => matchesName(t, p))) &&
      include.every((tag) => t.tags.includes(tag)) &&
      !exclude.some((tag) => t.tags.includes(tag)),
  );
  if (picked.length === 0) {
    throw new UserError(
      `no test matches the selection (${[...sel.tests.map(test), ...sel.tags.map(tag)].join(' ') || 'everything'}); ` +
        `known tests: ${all.map((t) => `${t.name}${t.tags.length ? ` [${t.tags.join(',')}]` : ''}`).join(', ') || '(none)'}`,
    );
  }
  return picked;
}

function matchesName(t: TestSpec, pattern: string): boolean {
  return t.name === pattern || t.unit === pattern || minimatch(t.name, pattern) || minimatch(t.unit, pattern);
}

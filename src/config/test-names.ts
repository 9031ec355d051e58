/**
 * Test names become file names in the output directory, VM machine names, artifact names and the
 * kernel's `systemd.unit=`: a discovered unit's name must pass the rules a listed test's name does
 * (the manifest schema's), and no two tests may end up with the same file or machine name. Pure.
 */
import schema from '../../schemas/itest-manifest.schema.json' with { type: 'json' };
import { machineName, safeFileName } from '../util/sanitize.ts';

const listed = (
  schema.properties.tests.items.allOf[1] as {
    properties: { name: { pattern: string; maxLength: number }; unit: { pattern: string } };
  }
).properties;
const NAME = new RegExp(listed.name.pattern);
const NAME_MAX = listed.name.maxLength;
const UNIT = new RegExp(listed.unit.pattern);

/** Why a discovered unit cannot be a test, or undefined when it can. */
export function discoveredUnitProblem(unit: string): string | undefined {
  const name = unit.replace(/\.service$/, '');
  const bad = [...new Set(name.replace(/[A-Za-z0-9._@+-]/g, ''))].map((c) => JSON.stringify(c)).join(' ');
  if (NAME.test(name) && name.length <= NAME_MAX) return undefined;
  const why = bad
    ? `has ${bad}`
    : name.length > NAME_MAX
      ? `is ${name.length} characters long`
      : 'does not start with a letter or digit';
  return `${JSON.stringify(unit)}: its test name ${JSON.stringify(name)} ${why}`;
}

/** What to do about discovered units that cannot be tests, said once for all of them. */
export function discoveredUnitsFix(units: string[]): string {
  const listable = units.filter((u) => UNIT.test(u));
  return (
    `A test name is letters, digits and . _ @ + - only, starting with a letter or digit, at most ${NAME_MAX} ` +
    "characters: it becomes file names, the VM's machine name and the kernel's systemd.unit= (a space would " +
    "split that argument, a comma break QEMU's -smbios). Fix: rename the unit, or leave it out with " +
    'discover.exclude' +
    (listable.length
      ? `; a unit whose own name is valid can be listed under tests: with a valid test name, e.g. - {name: NAME, unit: ${JSON.stringify(listable[0])}}`
      : '')
  );
}

/** Run ids are 6 hex digits (engine/run-tests.ts); one- and two-digit attempts shorten the name differently. */
const machineNames = (name: string) => [machineName(name, 'ffffff', 1), machineName(name, 'ffffff', 10)];

/** A test whose name is another's name plus the suffix of that one's earlier attempts or rotated journals. */
const SHADOWS = [/^(.+)\.attempt-\d+$/, /^(.+)@[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{16}$/];

/** Every pair of tests that would write the same files or run under the same machine name, in words. */
export function nameCollisions(names: readonly string[]): string[] {
  const out: string[] = [];
  const pairs = new Set<string>();
  const report = (a: string, b: string, what: string) => {
    const key = `${a}\0${b}`;
    if (pairs.has(key)) return;
    pairs.add(key);
    out.push(`tests ${JSON.stringify(a)} and ${JSON.stringify(b)} ${what}`);
  };
  const byFile = new Map<string, string>();
  const byMachine = new Map<string, string>();
  const all = new Set(names);
  for (const name of names) {
    const file = safeFileName(name);
    const first = byFile.get(file);
    if (first !== undefined && first !== name)
      report(first, name, `would write the same files (${file}.journal, ${file}.console.log)`);
    else byFile.set(file, name);
    for (const m of machineNames(name)) {
      const other = byMachine.get(m);
      if (other !== undefined && other !== name)
        report(
          other,
          name,
          `would run under the same VM machine name (${m.replace(/-ffffff-\d+$/, '-<run>-<attempt>')}: lowercase letters, digits and - only, at most 63 characters)`,
        );
      else byMachine.set(m, name);
    }
    for (const re of SHADOWS) {
      const base = re.exec(name)?.[1];
      if (base !== undefined && all.has(base))
        report(
          base,
          name,
          `would write the same files (${name}.journal is where ${base}'s earlier attempts or journals go)`,
        );
    }
  }
  return out;
}

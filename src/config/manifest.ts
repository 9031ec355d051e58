/**
 * The test manifest (itest.yaml): parse, validate against the published JSON Schema, and report every
 * problem with file, line, column, field and a fix; bounded in size and nodes, aliases included. Pure
 * apart from reading the file in loadManifest.
 */
import { Ajv, type ErrorObject } from 'ajv';
import {
  LineCounter,
  parseDocument,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  visit,
  type Document,
  type Node,
} from 'yaml';
import schema from '../../schemas/itest-manifest.schema.json' with { type: 'json' };
import { INPUT_LIMITS, spell, type FrontDoor } from './settings.ts';
import { preview, readCapped } from './input-file.ts';
import { mkosiArgProblems } from './mkosi-args.ts';
import { UserError } from '../util/errors.ts';

export const MANIFEST_NAME = 'itest.yaml';

export interface ManifestSettings {
  timeout?: number;
  'exit-status'?: number;
  'skip-status'?: number;
  'should-fail'?: boolean;
  'kernel-cmdline'?: string | string[];
  credentials?: Record<string, string>;
  'mkosi-args'?: string[];
  'qemu-args'?: string[];
  ram?: string | number;
  cpus?: number;
  retries?: number;
  'infra-retries'?: number;
  tags?: string[];
  'fail-on-coredump'?: boolean;
  'coredump-exclude'?: string;
}

export interface ManifestTest extends ManifestSettings {
  name: string;
  unit?: string;
  description?: string;
}

export interface Manifest {
  path: string;
  version: 1;
  firmware?: string;
  defaults: ManifestSettings;
  discover?: { units: string[]; exclude: string[]; extraTrees: string[] };
  tests: ManifestTest[];
}

export interface ManifestProblem {
  line: number;
  column: number;
  field: string;
  message: string;
  fix: string;
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);

export async function loadManifest(path: string, door: FrontDoor = 'cli'): Promise<Manifest> {
  let text: string;
  try {
    text = await readCapped(path, INPUT_LIMITS.manifestBytes, 'the test manifest');
  } catch (err) {
    if (err instanceof UserError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') {
      throw new UserError(
        `${path}: no test manifest here. Fix: create ${MANIFEST_NAME} beside mkosi.conf ` +
          `(see examples/demo/${MANIFEST_NAME}), or point ${spell(door, 'manifest')} at yours.`,
      );
    }
    throw new UserError(`${path}: cannot read the test manifest: ${e.message}`);
  }
  return parseManifest(text, path);
}

/** Problems shown at most; the rest are counted (a broken list can have one per item). */
const MAX_SHOWN = 50;
/** Schema errors turned into problems at most. */
const MAX_SCHEMA_ERRORS = 500;

/** Parses and validates manifest text; throws one UserError listing every problem. */
export function parseManifest(text: string, path: string): Manifest {
  const { problems, more = 0, data } = check(text);
  if (problems.length > 0) {
    const total = problems.length + more;
    const lines = problems
      .slice(0, MAX_SHOWN)
      .map((p) => `${path}:${p.line}:${p.column}: ${p.field}: ${p.message}\n    fix: ${p.fix}`);
    if (total > MAX_SHOWN) lines.push(`... and ${total - Math.min(MAX_SHOWN, problems.length)} more`);
    throw new UserError(
      `invalid test manifest (${total} problem${total > 1 ? 's' : ''}):\n${lines.join('\n')}`,
    );
  }
  return normalize(data!, path);
}

/** Every problem in the manifest text, in document order; empty when valid. */
export function checkManifest(text: string): ManifestProblem[] {
  return check(text).problems;
}

const problemAt = (
  pos: { line: number; column: number },
  field: string,
  message: string,
  fix: string,
): ManifestProblem[] => [{ ...pos, field, message, fix }];
const START = { line: 1, column: 1 };

/** Nodes of the document, up to one past the cap (counting stops there). */
function countNodes(doc: Document): number {
  let n = 0;
  visit(doc, () => (++n > INPUT_LIMITS.manifestNodes ? visit.BREAK : undefined));
  return n;
}

/** The problems (schema errors past MAX_SCHEMA_ERRORS only counted, in `more`), or the data when valid. */
function check(text: string): { problems: ManifestProblem[]; more?: number; data?: Record<string, unknown> } {
  if (text.length > INPUT_LIMITS.manifestBytes)
    return {
      problems: problemAt(
        START,
        '(file)',
        `${text.length} characters, more than the ${INPUT_LIMITS.manifestBytes} bytes itest reads`,
        'a manifest is kilobytes: check that this is the right file',
      ),
    };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => ({
        ...at(e.pos[0]),
        field: '(yaml)',
        message: e.message.split('\n')[0] ?? e.message,
        fix: 'correct the YAML syntax at this position (indentation, quoting, duplicate keys)',
      })),
    };
  }
  // Size caps before the costly steps (plain data, schema): a broken file must not take minutes or all memory.
  if (countNodes(doc) > INPUT_LIMITS.manifestNodes)
    return {
      problems: problemAt(
        START,
        '(root)',
        `more than ${INPUT_LIMITS.manifestNodes} YAML nodes`,
        'a manifest is kilobytes: check that this is the right file',
      ),
    };
  const tests = isMap(doc.contents) ? doc.contents.get('tests', true) : undefined;
  if (isSeq(tests) && tests.items.length > INPUT_LIMITS.tests)
    return {
      problems: problemAt(
        at(tests.range?.[0] ?? 0),
        'tests',
        `${tests.items.length} tests, more than the ${INPUT_LIMITS.tests} itest runs`,
        'split the tests over several manifests (--manifest), or use discover: with globs',
      ),
    };
  let data: unknown;
  try {
    // The default cap of yaml, set here on purpose: aliases that expand past it are an alias bomb.
    data = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (e) {
    // toJS throws for aliases only: too many expansions (a bomb), or an alias of no anchor.
    const bomb = /alias count/i.test((e as Error).message);
    let alias: Node | undefined;
    visit(doc, {
      Alias: (_, n) => (bomb || n.resolve(doc) === undefined ? ((alias = n), visit.BREAK) : undefined),
    });
    return {
      problems: problemAt(
        alias && isAlias(alias) && alias.range ? at(alias.range[0]) : START,
        '(yaml)',
        bomb ? `the aliases expand too far (${(e as Error).message})` : (e as Error).message,
        bomb
          ? 'write the values out, or use fewer aliases (*name) of large anchors (&name)'
          : 'define the anchor (&name) before the alias (*name) that refers to it',
      ),
    };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return {
      problems: problemAt(
        START,
        '(root)',
        'the manifest must be a mapping',
        'start with `version: 1` and a `tests:` list',
      ),
    };
  }
  let problems: ManifestProblem[] = [];
  let more = 0;
  if (!validate(data)) {
    // A list of 200k wrong items has as many errors: words and positions for the first ones are enough.
    const errors = validate.errors ?? [];
    problems = schemaProblems(errors.slice(0, MAX_SCHEMA_ERRORS), doc, at);
    more = Math.max(0, errors.length - MAX_SCHEMA_ERRORS);
  }
  problems = problems.concat(semanticProblems(data as Record<string, unknown>, doc, at));
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return problems.length > 0 ? { problems, more } : { problems, more, data: data as Record<string, unknown> };
}

type At = (offset: number) => { line: number; column: number };

function pathOf(instancePath: string): (string | number)[] {
  if (!instancePath) return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function fieldName(path: (string | number)[]): string {
  if (path.length === 0) return '(root)';
  return path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
    '',
  );
}

function nodeAt(doc: Document, path: (string | number)[], key?: string): Node | undefined {
  const node = path.length === 0 ? doc.contents : (doc.getIn(path, true) as Node | undefined);
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((i) => isPair(i) && isScalar(i.key) && i.key.value === key);
    if (pair && isScalar(pair.key)) return pair.key;
  }
  return node ?? undefined;
}

function position(doc: Document, path: (string | number)[], at: At, key?: string) {
  // Walk up until a node with a source range is found (missing keys have none).
  for (let p = path; ; p = p.slice(0, -1)) {
    const node = nodeAt(doc, p, p === path ? key : undefined);
    if (node?.range) return at(node.range[0]);
    if (p.length === 0) return { line: 1, column: 1 };
  }
}

const SETTINGS = Object.keys((schema.definitions.settings as { properties: object }).properties);
const TOP = Object.keys(schema.properties);
const DISCOVER = Object.keys(schema.properties.discover.properties);

function allowedAt(path: (string | number)[]): string[] {
  if (path.length === 0) return TOP;
  if (path[0] === 'discover') return DISCOVER;
  if (path[0] === 'defaults') return SETTINGS.filter((k) => !['name', 'unit', 'description'].includes(k));
  return SETTINGS;
}

function describe(path: (string | number)[]): string | undefined {
  const last = [...path].reverse().find((p) => typeof p === 'string');
  if (last === undefined) return undefined;
  type Described = Record<string, { description?: string }>;
  const props: Described = {
    ...(schema.definitions.settings.properties as unknown as Described),
    ...(schema.properties as unknown as Described),
    ...(schema.properties.discover.properties as unknown as Described),
    name: { description: 'Test name, unique in the manifest. Letters, digits and . _ @ + - only.' },
    unit: { description: 'The systemd unit the VM boots into (ending in .service or .target).' },
  };
  return props[last]?.description;
}

function closest(word: string, options: string[]): string | undefined {
  // The edit distance costs length x length: no guess for a key no option is near in length anyway.
  if (word.length > 64) return undefined;
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i]![j] = Math.min(
          d[i - 1]![j]! + 1,
          d[i]![j - 1]! + 1,
          d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
    return d[a.length]![b.length]!;
  };
  const best = options.map((o) => ({ o, d: dist(word.toLowerCase(), o) })).sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, Math.floor(word.length / 3)) ? best.o : undefined;
}

function schemaProblems(errors: ErrorObject[], doc: Document, at: At): ManifestProblem[] {
  // oneOf/anyOf/allOf wrappers repeat what their branches said; keep one error per field and keyword.
  const seen = new Set<string>();
  const out: ManifestProblem[] = [];
  const byPath = new Map<string, ErrorObject[]>();
  for (const e of errors) byPath.set(e.instancePath, [...(byPath.get(e.instancePath) ?? []), e]);
  for (const e of errors) {
    const path = pathOf(e.instancePath);
    let key: string | undefined;
    let message = e.message ?? 'is invalid';
    let fix = describe(path) ?? 'see schemas/itest-manifest.schema.json';
    let fieldPath = path;
    switch (e.keyword) {
      case 'additionalProperties': {
        key = (e.params as { additionalProperty: string }).additionalProperty;
        fieldPath = [...path, key];
        const allowed = allowedAt(path);
        const guess = closest(key, allowed);
        message = `unknown field ${preview(key)}`;
        fix = `${guess ? `did you mean "${guess}"? ` : ''}allowed here: ${allowed.join(', ')}`;
        break;
      }
      case 'required': {
        const missing = (e.params as { missingProperty: string }).missingProperty;
        fieldPath = [...path, missing];
        message = `missing required field "${missing}"`;
        fix = describe(fieldPath) ?? `add "${missing}"`;
        break;
      }
      case 'oneOf':
      case 'anyOf':
      case 'allOf':
        // Only report the wrapper when its branches said nothing more useful.
        if (
          (byPath.get(e.instancePath) ?? []).some(
            (o) => !['oneOf', 'anyOf', 'allOf', 'type'].includes(o.keyword),
          )
        )
          continue;
        message = 'has the wrong type or shape';
        break;
      case 'type':
        if ((byPath.get(e.instancePath) ?? []).some((o) => o.keyword === 'oneOf')) {
          const types = (byPath.get(e.instancePath) ?? [])
            .filter((o) => o.keyword === 'type')
            .map((o) => (o.params as { type: string }).type);
          message = `must be ${[...new Set(types)].join(' or ')}`;
        } else {
          message = `must be ${(e.params as { type: string }).type}`;
        }
        break;
      case 'const':
        message = `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
        break;
      case 'pattern':
        message = `${preview(doc.getIn(path))} does not match ${(e.params as { pattern: string }).pattern}`;
        break;
    }
    const field = fieldName(fieldPath);
    const id = `${field}|${message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const got = doc.getIn(path);
    if (
      ['type', 'minimum', 'maximum', 'exclusiveMinimum', 'oneOf'].includes(e.keyword) &&
      got !== undefined &&
      typeof got !== 'object'
    ) {
      message += ` (got ${preview(got)})`;
    }
    out.push({ ...position(doc, path, at, key), field, message, fix });
  }
  return out;
}

function semanticProblems(data: Record<string, unknown>, doc: Document, at: At): ManifestProblem[] {
  const out: ManifestProblem[] = [];
  // The schema's errors say what is wrong with a defaults or a test that is no mapping; here they are skipped.
  const mapping = (v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const defaults = mapping(data.defaults);
  for (const k of ['name', 'unit', 'description']) {
    if (defaults && k in defaults) {
      out.push({
        ...position(doc, ['defaults'], at, k),
        field: `defaults.${k}`,
        message: `"${k}" cannot be a default`,
        fix: `set "${k}" on each test under tests:`,
      });
    }
  }
  const tests = Array.isArray(data.tests) ? (data.tests as unknown[]).map(mapping) : [];
  const regexAt = (path: (string | number)[], value: unknown) => {
    if (typeof value !== 'string') return;
    try {
      new RegExp(value);
    } catch (e) {
      out.push({
        ...position(doc, path, at),
        field: fieldName(path),
        message: `not a valid regular expression: ${(e as Error).message}`,
        fix: 'write a JavaScript regular expression, e.g. "^(sleep|test-crasher)$"',
      });
    }
  };
  regexAt(['defaults', 'coredump-exclude'], defaults?.['coredump-exclude']);
  tests.forEach((t, i) => regexAt(['tests', i, 'coredump-exclude'], t?.['coredump-exclude']));
  // Defaults' mkosi-args come first in every test's: each argument is checked in that context, once.
  const strings = (v: unknown): string[] =>
    Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : [];
  const defaultArgs = strings(defaults?.['mkosi-args']);
  const refuse = (path: (string | number)[], who: string, message: string) =>
    out.push({
      ...position(doc, path, at),
      field: fieldName(path),
      message: `${who}: ${message}`,
      fix: 'remove it: a test may change the VM it boots, never the cached image or its config (see "Writing tests" in the README)',
    });
  for (const p of mkosiArgProblems(defaultArgs))
    refuse(['defaults', 'mkosi-args', p.index], 'every test (defaults)', p.message);
  tests.forEach((t, i) => {
    const own = strings(t?.['mkosi-args']);
    for (const p of mkosiArgProblems([...defaultArgs, ...own]))
      if (p.index >= defaultArgs.length)
        refuse(
          ['tests', i, 'mkosi-args', p.index - defaultArgs.length],
          `test ${typeof t?.name === 'string' ? t.name : `#${i + 1}`}`,
          p.message,
        );
  });
  const firstByName = new Map<string, number>();
  tests.forEach((t, i) => {
    if (typeof t?.name !== 'string') return;
    const prev = firstByName.get(t.name);
    if (prev !== undefined) {
      out.push({
        ...position(doc, ['tests', i, 'name'], at),
        field: `tests[${i}].name`,
        message: `duplicate test name "${t.name}" (first at tests[${prev}])`,
        fix: 'give every test a unique name, or merge the two entries',
      });
    } else firstByName.set(t.name, i);
  });
  if (tests.length === 0 && data.discover === undefined) {
    out.push({
      ...position(doc, [], at),
      field: 'tests',
      message: 'no tests: the manifest has neither a tests: list nor a discover: block',
      fix: 'add `tests: [{name: MY-TEST}]` or `discover: {units: "TEST-*.service"}`',
    });
  }
  return out;
}

const list = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v : [v];

function normalize(data: Record<string, unknown>, path: string): Manifest {
  const d = data.discover as
    { units: string | string[]; exclude?: string | string[]; 'extra-trees'?: string[] } | undefined;
  return {
    path,
    version: 1,
    ...(typeof data.firmware === 'string' ? { firmware: data.firmware } : {}),
    defaults: (data.defaults as ManifestSettings | undefined) ?? {},
    ...(d
      ? { discover: { units: list(d.units), exclude: list(d.exclude), extraTrees: d['extra-trees'] ?? [] } }
      : {}),
    tests: (data.tests as ManifestTest[] | undefined) ?? [],
  };
}

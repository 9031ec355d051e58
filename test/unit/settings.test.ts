/**
 * One table of settings (src/config/settings.ts), one builder (buildRunConfig): both front doors map their
 * raw strings into the same RunConfig, with the same defaults, and errors in each door's own words.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { buildRunConfig, type RawSettings, type RunConfig } from '../../src/config/run-config.ts';
import { SETTINGS, spell, type Setting } from '../../src/config/settings.ts';
import { parseInputs } from '../../src/action/inputs.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { UserError } from '../../src/util/errors.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEMO = join(ROOT, 'examples/demo');
const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { description: string; default?: string }>;
};

const fromCli = (raw: RawSettings): RunConfig =>
  buildRunConfig(raw, { door: 'cli', cwd: ROOT, env: {}, invokedAs: 'itest', cacheDir: '/c' });
const fromInputs = (inputs: Record<string, string>): RunConfig =>
  parseInputs(
    (n) => inputs[n] ?? action.inputs[n]?.default ?? '',
    { runAttempt: '1', runnerTemp: '/rt' },
    {},
    ROOT,
  ).run;

/** The fields both doors set from user input (the action's cache directory and keep policy are its own). */
const shared = (c: RunConfig): Partial<RunConfig> => {
  const rest: Partial<RunConfig> = { ...c };
  for (const k of ['env', 'door', 'cacheDir', 'keep', 'invokedAs'] as const) delete rest[k];
  return rest;
};

describe('settings: one table for both front doors', () => {
  it('every setting an action input carries is declared in action.yml, with the same default', () => {
    for (const [key, s] of Object.entries(SETTINGS) as [string, Setting][]) {
      if (!s.input) continue;
      const declared = action.inputs[s.input];
      assert.ok(declared, `action.yml lacks input ${s.input} (setting ${key})`);
      if (s.default !== undefined) assert.equal(declared.default ?? '', s.default, `default of ${s.input}`);
    }
  });

  it('every setting with a flag is an option of `itest run` or of every config command, with its doc', () => {
    const program = buildProgram();
    const run = program.commands.find((c) => c.name() === 'run')!;
    for (const s of Object.values(SETTINGS) as Setting[]) {
      if (!s.flag) continue;
      const o = run.options.find((x) => x.long === s.flag);
      assert.ok(o, `itest run has no ${s.flag}`);
      assert.equal(o.description, s.doc);
    }
  });

  // Same intent, each door's spelling -> the same RunConfig (as build-push-action's context tests do).
  const cases: [string, RawSettings, Record<string, string>][] = [
    ['defaults', { config: DEMO }, { config: DEMO }],
    [
      'selection and pool',
      { config: DEMO, tests: ['TEST-01-BASIC', 'TEST-02-*'], tags: ['smoke'], jobs: '3' },
      { config: DEMO, tests: 'TEST-01-BASIC,\nTEST-02-*', tags: 'smoke', jobs: '3' },
    ],
    [
      'exclusions and repeats',
      { config: DEMO, tags: ['smoke', '!slow'], repeat: '10' },
      { config: DEMO, tags: 'smoke, !slow', repeat: '10' },
    ],
    [
      'host and timeouts',
      { config: DEMO, kvm: 'no', transport: 'serial', timeout: '90', timeoutScale: '1.5' },
      { config: DEMO, kvm: 'no', transport: 'serial', timeout: '90', 'timeout-scale': '1.5' },
    ],
    [
      'image key',
      { config: DEMO, hashKey: 'v2', hashGlobs: ['src/**'], keyPrefix: 'img', cache: 'false' },
      { config: DEMO, 'cache-key': 'v2', 'hash-globs': 'src/**', 'key-prefix': 'img', cache: 'false' },
    ],
  ];
  for (const [name, raw, inputs] of cases) {
    it(`CLI flags and action inputs agree: ${name}`, () => {
      assert.deepEqual(shared(fromInputs(inputs)), shared(fromCli(raw)));
    });
  }

  const repeats: [string, number | undefined | RegExp][] = [
    ['1', undefined],
    ['2', 2],
    ['1000', 1000],
    ['0', /^--repeat: "0" must be a whole number from 1 to 1000$/],
    ['1001', /^--repeat: "1001" must be a whole number from 1 to 1000$/],
    ['2.5', /^--repeat: "2.5" must be a whole number/],
    ['many', /^--repeat: "many" must be a whole number/],
  ];
  for (const [v, want] of repeats)
    it(`--repeat ${v}: ${want instanceof RegExp ? 'refused' : String(want)}`, () => {
      if (want instanceof RegExp)
        assert.throws(
          () => fromCli({ config: DEMO, repeat: v }),
          (e: unknown) => e instanceof UserError && want.test(e.message),
        );
      else assert.equal(fromCli({ config: DEMO, repeat: v }).repeat, want);
    });

  it('defaults come from the table', () => {
    const c = fromCli({ config: DEMO });
    assert.equal(c.transport, SETTINGS.transport.default);
    assert.equal(c.kvm, SETTINGS.kvm.default);
    assert.equal(c.keep, SETTINGS.keep.default);
    assert.equal(c.keyPrefix, SETTINGS.keyPrefix.default);
    assert.equal(c.outputDir, join(ROOT, SETTINGS.output.default));
    assert.equal(c.useCache, true);
    assert.equal(c.repeat, undefined, 'one run unless asked');
    assert.equal(SETTINGS.repeat.default, '1');
  });

  it('errors name the setting in the words of the door the user came through', () => {
    const err = (f: () => unknown, re: RegExp) =>
      assert.throws(f, (e: unknown) => e instanceof UserError && re.test(e.message), String(re));
    err(
      () => fromCli({ config: DEMO, timeout: '1e10' }),
      /^--timeout: "1e10" must be a number from 1 to 86400/,
    );
    err(() => fromInputs({ config: DEMO, timeout: '1e10' }), /^input `timeout`: "1e10" must be a number/);
    err(() => fromCli({ config: DEMO, kvm: 'maybe' }), /^--kvm: "maybe" is not one of auto, yes, no/);
    err(() => fromCli({ config: DEMO, shard: '2' }), /^--plan and --shard go together/);
    err(() => fromInputs({ config: DEMO, shard: '2' }), /^inputs `plan` and `shard` go together/);
    assert.equal(spell('cli', 'kvm', 'yes'), '--kvm yes');
    assert.equal(spell('action', 'kvm', 'yes'), 'input `kvm: yes`');
    assert.equal(spell('action', 'hashKey'), 'input `cache-key`');
  });
});

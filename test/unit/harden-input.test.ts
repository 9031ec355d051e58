/**
 * Hostile or broken input (issue 12, items 7, 8, 9 and 14): discovered unit names, timeouts, oversized and
 * malformed manifests, plans and results files, and mkosi options that would change the cached image.
 * Each case goes through the code path a run takes (loadTests, buildRunConfig, the loaders, the CLI's
 * main) and expects a UserError (exit 2) that names the file, field or test, never a crash.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTests } from '../../src/engine/load-tests.ts';
import { readPlanFile } from '../../src/engine/merge-report.ts';
import { loadShardResults } from '../../src/shard/load-results.ts';
import { checkManifest, parseManifest } from '../../src/config/manifest.ts';
import { resolveTests } from '../../src/config/resolve-tests.ts';
import { buildRunConfig, type RawSettings } from '../../src/config/run-config.ts';
import { parseShardPlan, selectShard, type ShardPlan } from '../../src/config/shard-plan.ts';
import { SETTINGS } from '../../src/config/settings.ts';
import { planShards } from '../../src/shard/plan-shards.ts';
import { machineName } from '../../src/util/sanitize.ts';
import { UserError } from '../../src/util/errors.ts';
import { main } from '../../src/cli/main.ts';
import manifestSchema from '../../schemas/itest-manifest.schema.json' with { type: 'json' };
import { results, testResult } from '../helpers/results.ts';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'itest-harden-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

let n = 0;
/** A config directory with mkosi.conf, this manifest and these unit files in mkosi.extra. */
async function config(manifest: string, units: string[] = []): Promise<string> {
  const dir = join(root, `cfg-${++n}`);
  const unitDir = join(dir, 'mkosi.extra/usr/lib/systemd/system');
  await mkdir(unitDir, { recursive: true });
  await writeFile(join(dir, 'mkosi.conf'), '[Output]\nOutput=x\n');
  await writeFile(join(dir, 'itest.yaml'), manifest);
  for (const u of units) await writeFile(join(unitDir, u), '[Service]\nType=oneshot\nExecStart=true\n');
  return dir;
}

const load = (dir: string, over: Partial<Parameters<typeof loadTests>[0]> = {}) =>
  loadTests({ configDir: dir, manifestPath: join(dir, 'itest.yaml'), tests: [], tags: [], ...over });

/** Asserts that p rejects with a UserError of exit status 2 whose message matches every pattern. */
async function refuses(p: Promise<unknown> | (() => unknown), ...patterns: RegExp[]): Promise<string> {
  let error: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    error = e;
  }
  assert.ok(
    error instanceof UserError,
    `expected a UserError, got ${String((error as Error)?.stack ?? error)}`,
  );
  assert.equal(error.exitCode, 2);
  for (const re of patterns) assert.match(error.message, re);
  return error.message;
}

/** The CLI in this process: exit status and what it printed on stderr. */
async function cli(...argv: string[]): Promise<{ code: number; err: string }> {
  const err: string[] = [];
  const { error, log } = console;
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  console.log = () => {};
  try {
    const code = await main(['node', 'itest', ...argv]);
    return { code, err: err.join('\n') };
  } finally {
    Object.assign(console, { error, log });
    process.exitCode = undefined;
  }
}

const fromCli = (raw: RawSettings, plan?: ShardPlan) =>
  buildRunConfig(raw, {
    door: 'cli',
    cwd: root,
    env: {},
    invokedAs: 'itest',
    cacheDir: '/c',
    configOptional: true,
    ...(plan ? { plan } : {}),
  });

describe('item 7: discovered unit names are checked as listed names are, and names never collide', () => {
  const discover = 'version: 1\ndiscover:\n  units: TEST-*.service\n';

  for (const unit of ['TEST-sp ace.service', 'TEST-a:b.service', 'TEST-c,d.service', 'TEST-é.service']) {
    it(`refuses the discovered unit ${JSON.stringify(unit)}, naming it and the manifest`, async () => {
      const dir = await config(discover, ['TEST-01-OK.service', unit]);
      const name = unit.replace(/\.service$/, '');
      await refuses(
        load(dir),
        new RegExp(`${join(dir, 'itest.yaml')}: discover: `),
        new RegExp(`"${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.service": its test name`),
        /Fix: rename the unit, or leave it out with discover\.exclude/,
      );
    });
  }

  it('names every bad unit at once, and a listed test can take over a unit with a valid unit name', async () => {
    const dir = await config(discover, ['TEST-é.service', 'TEST-ü.service', 'TEST-a:b.service']);
    const msg = await refuses(load(dir), /3 discovered units cannot be tests/);
    for (const u of ['TEST-é', 'TEST-ü', 'TEST-a:b']) assert.ok(msg.includes(`"${u}.service"`), msg);
    // Listing the unit under a valid name covers it; excluding the others leaves nothing bad.
    const fixed = await config(
      `${discover}  exclude: ["TEST-é.service", "TEST-ü.service"]\ntests:\n  - name: TEST-a_b\n    unit: "TEST-a:b.service"\n`,
      ['TEST-é.service', 'TEST-ü.service', 'TEST-a:b.service'],
    );
    const { all } = await load(fixed);
    assert.deepEqual(
      all.map((t) => [t.name, t.unit]),
      [['TEST-a_b', 'TEST-a:b.service']],
    );
  });

  it('refuses two tests that would share a VM machine name, naming both', async () => {
    for (const [a, b] of [
      ['TEST-A', 'test-a'],
      ['T_1', 'T-1'],
      ['T.1', 'T@1'],
    ] as const) {
      const dir = await config(`version: 1\ntests:\n  - name: ${a}\n  - name: ${b}\n`);
      await refuses(
        load(dir),
        new RegExp(`tests "${a}" and "${b}" would run under the same VM machine name`),
      );
    }
  });

  it("refuses a test named like another test's earlier attempt files", async () => {
    const dir = await config('version: 1\ntests:\n  - name: X\n  - name: X.attempt-1\n');
    await refuses(load(dir), /tests "X" and "X\.attempt-1" would write the same files/);
  });

  it('two long names with a common start get different machine names (and are accepted)', async () => {
    const long = 'TEST-64-UDEV-STORAGE-A-VERY-LONG-PARAMETRIZED-VARIANT-';
    const a = machineName(`${long}one`, 'abc123', 1);
    const b = machineName(`${long}two`, 'abc123', 1);
    assert.notEqual(a, b);
    for (const m of [a, b]) assert.match(m, /^[a-z0-9-]{1,63}$/);
    const dir = await config(`version: 1\ntests:\n  - name: ${long}one\n  - name: ${long}two\n`);
    assert.equal((await load(dir)).all.length, 2);
  });

  it('through the CLI: exit 2 with the unit named', async () => {
    const dir = await config(discover, ['TEST-sp ace.service']);
    const r = await cli('list', '--config', dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /"TEST-sp ace\.service": its test name "TEST-sp ace" has " "/);
  });
});

describe('item 8: timeouts are bounded: at least 1 s and a timer can wait for them, also after scaling', () => {
  for (const [value, pattern] of [
    ['.inf', /must be <= 86400 \(got Infinity\)/],
    ['.nan', /must be/],
    ['1e9', /must be <= 86400 \(got 1000000000\)/],
    ['0.0001', /must be >= 1 \(got 0\.0001\)/],
  ] as const) {
    it(`refuses timeout: ${value} in the manifest, at its line, in a test and in the defaults`, async () => {
      const problems = checkManifest(
        `version: 1\ndefaults:\n  timeout: ${value}\ntests:\n  - name: A\n    timeout: ${value}\n`,
      );
      const fields = problems.map((p) => `${p.line}:${p.field}`);
      assert.ok(fields.includes('3:defaults.timeout'), fields.join());
      assert.ok(fields.includes('6:tests[0].timeout'), fields.join());
      assert.match(problems[0]!.message, pattern);
      const dir = await config(`version: 1\ntests:\n  - name: A\n    timeout: ${value}\n`);
      const r = await cli('list', '--config', dir);
      assert.equal(r.code, 2);
      assert.ok(r.err.includes(`${join(dir, 'itest.yaml')}:4:14: tests[0].timeout`), r.err);
    });
  }

  it('the schema bounds a test timeout as buildRunConfig bounds --timeout', () => {
    const t = manifestSchema.definitions.settings.properties.timeout as { minimum: number; maximum: number };
    const bounds = (SETTINGS.timeout as { bounds?: { min: number; max: number } }).bounds;
    assert.deepEqual({ min: t.minimum, max: t.maximum }, { min: bounds?.min, max: bounds?.max });
    assert.deepEqual(bounds, { min: 1, max: 86400, integer: false });
  });

  it('a manifest built in code is bounded too', () => {
    for (const timeout of [Infinity, NaN, 0, 1e9])
      assert.throws(
        () => resolveTests({ path: 'm.yaml', version: 1, defaults: {}, tests: [{ name: 'A', timeout }] }, []),
        (e: unknown) =>
          e instanceof UserError && /m\.yaml: test A: timeout .* from 1 to 86400/.test(e.message),
      );
  });

  it('--timeout and --timeout-scale: each bounded, and so is their product', async () => {
    await refuses(() => fromCli({ timeout: '1e10' }), /--timeout: "1e10" must be a number from 1 to 86400/);
    await refuses(
      () => fromCli({ timeoutScale: '1e-9' }),
      /--timeout-scale: "1e-9" must be a number from 0\.1 to 100/,
    );
    await refuses(
      () => fromCli({ timeout: '86400', timeoutScale: '100' }),
      /--timeout 86400: 86400 s x --timeout-scale 100 = 8640000 s: longer than the 2147483 s a timer can wait/,
    );
    await refuses(
      () => fromCli({ timeout: '1', timeoutScale: '0.1' }),
      /--timeout 1: 1 s x --timeout-scale 0\.1 = 0 s: the test would time out the moment it starts/,
    );
    assert.equal(fromCli({ timeout: '86400', timeoutScale: '24' }).timeoutScale, 24);
  });

  it('a manifest timeout times --timeout-scale is checked before any VM, naming the test', async () => {
    const dir = await config('version: 1\ntests:\n  - name: SLOW\n    timeout: 86400\n  - name: QUICK\n');
    await refuses(
      load(dir, { timeoutScale: 100 }),
      /itest\.yaml: test SLOW: timeout: 86400 s x --timeout-scale 100 = 8640000 s: longer than/,
    );
    const quick = await config('version: 1\ntests:\n  - name: QUICK\n    timeout: 1\n');
    await refuses(
      load(quick, { timeoutScale: 0.4 }),
      /test QUICK: timeout: 1 s x --timeout-scale 0\.4 = 0 s/,
    );
    assert.equal((await load(quick, { timeoutScale: 0.5 })).selected.length, 1);
  });
});

describe('item 9: oversized, malformed and empty inputs end with exit 2, the file and the field', () => {
  it('a manifest over 1 MiB is refused before it is parsed', async () => {
    const dir = await config(`version: 1\ntests:\n${'  - name: TEST-0000000000-PADDING\n'.repeat(40_000)}`);
    const t0 = performance.now();
    await refuses(
      load(dir),
      /itest\.yaml: the test manifest of 1\.\d MiB is larger than the 1 MiB itest reads/,
    );
    assert.ok(performance.now() - t0 < 1000, 'refused by its size, not after parsing it');
  });

  it('a manifest of more than 10,000 tests is refused, at the tests list', async () => {
    const tests = Array.from({ length: 10_001 }, (_, i) => `- {name: T${i}}`).join('\n');
    await refuses(
      () => parseManifest(`version: 1\ntests:\n${tests}\n`, 'big.yaml'),
      /big\.yaml:3:1: tests: 10001 tests, more than the 10000 itest runs/,
    );
  });

  it('a list of 130,000 wrong items gives a bounded message, not a stack overflow', () => {
    const text = `version: 1\ntests:\n  - name: A\n    tags: [${Array(130_000).fill('1').join(',')}]\n`;
    let message = '';
    assert.throws(
      () => parseManifest(text, 'wide.yaml'),
      (e: unknown) => e instanceof UserError && Boolean((message = e.message)),
    );
    assert.match(
      message,
      /^invalid test manifest \(130000 problems\):\nwide\.yaml:4:12: tests\[0\]\.tags\[0\]: must be string/,
    );
    assert.match(message, /\.\.\. and 129950 more$/);
    assert.ok(message.length < 20_000, `${message.length} characters`);
  });

  it('more than 10,000 discovered tests are refused', async () => {
    const units = Array.from({ length: 10_001 }, (_, i) => `TEST-${i}.service`);
    await refuses(
      () => resolveTests(parseManifest('version: 1\ndiscover:\n  units: TEST-*.service\n', 'm.yaml'), units),
      /m\.yaml: discover: 10001 discovered and 0 listed tests are more than the 10000/,
    );
  });

  it('a YAML alias bomb is a manifest problem at the alias, not a crash', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      levels.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    const dir = await config(`version: 1\n${levels.join('\n')}\ntests: [{name: A}]\n`);
    const r = await cli('list', '--config', dir);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /itest\.yaml:3:\d+: \(yaml\): the aliases expand too far/);
  });

  it('a manifest that is a device or a FIFO is refused unread', async () => {
    const dir = await config('version: 1\ntests: [{name: A}]\n');
    await refuses(load(dir, { manifestPath: '/dev/zero' }), /\/dev\/zero: not a regular file/);
  });

  const planFile = async (value: unknown): Promise<string> => {
    const f = join(root, `plan-${++n}.json`);
    await writeFile(f, typeof value === 'string' ? value : JSON.stringify(value));
    return f;
  };
  const good = planShards(
    [
      { name: 'A', timeout: 60 },
      { name: 'B', timeout: 60 },
    ],
    2,
  );

  for (const [what, plan, field] of [
    ['null', null, /\(root\): must be object \(got null\)/],
    ['a list', [1, 2], /\(root\): must be object/],
    ['a shard that is null', { ...good, shards: [null, good.shards[1]] }, /shards\[0\]: must be object/],
    [
      'a shard without tests',
      { ...good, shards: [{ index: 1 }, good.shards[1]] },
      /shards\[0\]\.tests: missing/,
    ],
    [
      'a test name that is not a name',
      { ...good, shards: [{ ...good.shards[0], tests: ['../x'] }, good.shards[1]] },
      /shards\[0\]\.tests\[0\]: must match pattern/,
    ],
    ['the wrong number of shards', { ...good, total: 3 }, /shards: 2 shards, but total says 3/],
    [
      'a test in two shards',
      { ...good, shards: [good.shards[0], { ...good.shards[1], tests: good.shards[0]!.tests }] },
      /shards\[1\]\.tests: test A is in shard 1 and in shard 2/,
    ],
    [
      'nesting 100 deep',
      { ...good, durations: JSON.parse(`${'{"x":'.repeat(100)}1${'}'.repeat(100)}`) },
      /nested deeper than 64 levels/,
    ],
  ] as const) {
    it(`a plan file with ${what}: exit 2 with the file and the field`, async () => {
      const f = await planFile(plan);
      await refuses(readPlanFile(f), new RegExp(`${f}: `), field);
      const r = await cli('report', '--merge', root, '--plan', f);
      assert.equal(r.code, 2);
      assert.match(r.err, field);
    });
  }

  it('a plan file over 4 MiB is refused by its size', async () => {
    const f = await planFile(' '.repeat(4 * 1024 ** 2 + 1));
    await refuses(readPlanFile(f), /shard plan of 4 MiB is larger than the 4 MiB itest reads/);
  });

  it('an empty shard runs nothing and says so, never every test', async () => {
    const dir = await config('version: 1\ntests:\n  - name: A\n  - name: B\n');
    const empty = { ...good, shards: [good.shards[0]!, { ...good.shards[1]!, tests: [] }] };
    // Read from a file or an action input, the schema refuses it.
    await refuses(
      readPlanFile(await planFile(empty)),
      /shards\[1\]\.tests: must NOT have fewer than 1 items/,
    );
    await refuses(
      () => parseShardPlan(JSON.stringify(empty), 'input `plan`'),
      /input `plan`: .*shards\[1\]\.tests/,
    );
    // A plan made in code reaches selectShard and buildRunConfig: still nothing selected.
    await refuses(
      () => selectShard(empty, 2, '--shard'),
      /--shard: shard 2 of plan \w+ has no tests: nothing to run/,
    );
    let selected: unknown;
    await refuses(async () => {
      const cfg = fromCli({ config: dir, shard: '2' }, empty);
      selected = (await load(dir, cfg)).selected;
    }, /no tests: nothing to run/);
    assert.equal(selected, undefined);
  });

  const resultsDir = async (files: Record<string, string>): Promise<string> => {
    const dir = join(root, `results-${++n}`);
    for (const [name, text] of Object.entries(files)) {
      await mkdir(join(dir, name), { recursive: true });
      await writeFile(join(dir, name, 'results.json'), text);
    }
    return dir;
  };
  const valid = results([testResult('A', 'pass')]);

  for (const [what, data, field] of [
    ['tests: [null]', { ...valid, tests: [null] }, /tests\[0\]: must be object/],
    [
      'a test without attempts',
      { ...valid, tests: [{ ...valid.tests[0], attempts: undefined }] },
      /tests\[0\]\.attempts: missing/,
    ],
    [
      'a status that is none',
      { ...valid, tests: [{ ...valid.tests[0], status: 'bogus' }] },
      /tests\[0\]\.status: must be equal to one of the allowed values/,
    ],
    ['shard: 7', { ...valid, shard: 7 }, /shard: must be object/],
    [
      'environment nested 100 deep',
      { ...valid, environment: JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`) },
      /nested deeper than 64 levels/,
    ],
  ] as const) {
    it(`a results.json with ${what}: exit 2 with the file and the field`, async () => {
      const dir = await resultsDir({ s1: JSON.stringify(data) });
      const r = await cli('report', '--merge', dir, '--output', join(dir, 'out'));
      assert.equal(r.code, 2, r.err);
      assert.ok(r.err.includes(join(dir, 's1/results.json')), r.err);
      assert.match(r.err, field);
    });
  }

  it('a malformed shard among good ones counts as missing, with the file and field in the report', async () => {
    const dir = await resultsDir({
      s1: JSON.stringify(valid),
      s2: JSON.stringify({ ...valid, tests: [null] }),
    });
    const { inputs, problems } = await loadShardResults([dir]);
    assert.equal(inputs.length, 1);
    assert.match(
      problems.join('\n'),
      /s2\/results\.json: not a results\.json of version 1: tests\[0\]: must be object/,
    );
  });

  it('results.json over 16 MiB or with more than 10,000 tests is refused', async () => {
    const big = await resultsDir({ s1: ' '.repeat(16 * 1024 ** 2 + 1) });
    await refuses(loadShardResults([big]), /a results\.json of 16 MiB is larger than the 16 MiB itest reads/);
    const many = await resultsDir({ s1: JSON.stringify({ ...valid, tests: Array(10_001).fill(0) }) });
    await refuses(loadShardResults([many]), /tests: 10001 tests, more than the 10000/);
  });
});

describe('item 14: mkosi options that would change the cached image are refused, naming the test and the option', () => {
  const manifest = (args: string[], where: 'test' | 'defaults' = 'test') =>
    where === 'test'
      ? `version: 1\ntests:\n  - name: T\n    mkosi-args: ${JSON.stringify(args)}\n`
      : `version: 1\ndefaults:\n  mkosi-args: ${JSON.stringify(args)}\ntests:\n  - name: T\n`;

  for (const [args, option] of [
    [['--ephemeral=no'], '--ephemeral'],
    [['--ephemeral', 'no'], '--ephemeral'],
    [['--ephemeral=false'], '--ephemeral'],
    [['--output-dir=/tmp/x'], '--output-dir'],
    [['--output-directory', '/tmp/x'], '--output-directory'],
    [['-O', '/tmp/x'], '-O'],
    [['-O/tmp/x'], '-O'],
    [['--directory', '/tmp'], '--directory'],
    [['-C', '/tmp'], '-C'],
    [['--force'], '--force'],
    [['-f'], '-f'],
    [['-ff'], '-f'],
    [['--debug', '-fB'], '-f'],
    [['--incremental=yes'], '--incremental'],
    [['-i'], '-i'],
    [['--wipe-build-dir'], '--wipe-build-dir'],
    [['-R'], '-R'],
    [['--auto-bump'], '--auto-bump'],
    [['--format=directory'], '--format'],
    [['-t', 'disk'], '-t'],
    [['--compress-output=zstd'], '--compress-output'],
    [['--output', 'other'], '--output'],
    [['--image-version=2'], '--image-version'],
    [['--include=/tmp/conf'], '--include'],
    [['--profile', 'p'], '--profile'],
  ] as const) {
    for (const where of ['test', 'defaults'] as const) {
      it(`${JSON.stringify(args)} in the ${where === 'test' ? "test's" : "defaults'"} mkosi-args`, async () => {
        const dir = await config(manifest([...args], where));
        const msg = await refuses(
          load(dir),
          where === 'test'
            ? /mkosi-args\[\d\]: test T: /
            : /defaults\.mkosi-args\[\d\]: every test \(defaults\): /,
        );
        assert.ok(
          msg.includes(
            `${JSON.stringify(args.find((a) => a.startsWith('-') && a !== '--debug'))} is refused`,
          ),
          msg,
        );
        if (!args.some((a) => a === option || a.startsWith(`${option}=`)))
          assert.ok(msg.includes(`(it holds ${option})`), msg);
      });
    }
  }

  for (const [args, pattern] of [
    [['clean'], /"clean" is a mkosi verb/],
    [['build'], /"build" is a mkosi verb/],
    [['--debug', 'burn'], /"burn" is a mkosi verb/],
    [['--json', 'x'], /"x" is no option's value/],
    [['--'], /"--" ends mkosi's options/],
  ] as const) {
    it(`a verb or a bare word: ${JSON.stringify(args)}`, async () => {
      const dir = await config(manifest([...args]));
      await refuses(load(dir), /test T: /, pattern);
    });
  }

  it("a test's argument after the defaults' flag is read in that context", async () => {
    const dir = await config(
      'version: 1\ndefaults:\n  mkosi-args: [--debug]\ntests:\n  - name: T\n    mkosi-args: [qemu]\n',
    );
    await refuses(load(dir), /tests\[0\]\.mkosi-args\[0\]: test T: "qemu" is a mkosi verb/);
  });

  it('mkosi options that only change the VM are accepted, values included', async () => {
    const args = [
      '--runtime-network',
      'none',
      '--runtime-network=user',
      '--credential=a=b',
      '--runtime-size=8G',
      '--kernel-command-line-extra=quiet',
      '--debug',
      '--drive',
      'd:1G',
      '--runtime-tree',
      '/src:/work',
      '--register=no',
      '-E',
      'FOO=1',
    ];
    const dir = await config(
      `version: 1\ndefaults:\n  mkosi-args: ["--debug"]\ntests:\n  - name: T\n    mkosi-args: ${JSON.stringify(args)}\n`,
    );
    const { selected } = await load(dir);
    assert.deepEqual(selected[0]!.mkosiArgs, ['--debug', ...args]);
  });

  it('through the CLI: exit 2, the file, the test and the option', async () => {
    const dir = await config(manifest(['--ephemeral=no']));
    const r = await cli('list', '--config', dir);
    assert.equal(r.code, 2);
    assert.ok(
      r.err.includes(
        `${join(dir, 'itest.yaml')}:4:18: tests[0].mkosi-args[0]: test T: "--ephemeral=no" is refused`,
      ),
      r.err,
    );
  });
});

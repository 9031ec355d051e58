/**
 * Fuzzing the parsers of what users and other jobs hand itest: manifests (YAML), shard plans and
 * results.json files. Random and mutated inputs from a seeded PRNG go through the code a run takes (the
 * loaders, then what consumes their output: test resolution, shard selection, the merge and its report;
 * and every few cases the CLI's main() with argv). Each must be accepted or refused with a UserError of
 * exit status 2 and a message: never another exception, never exit 70. Time-bounded (about 15 s in all);
 * ITEST_FUZZ_SEED=<n> replays a seed, ITEST_FUZZ_SECONDS=<s> changes the budget per parser.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseManifest } from '../../src/config/manifest.ts';
import { resolveTests, selectTests } from '../../src/config/resolve-tests.ts';
import { parseShardPlan, selectShard } from '../../src/config/shard-plan.ts';
import { loadShardResults } from '../../src/shard/load-results.ts';
import { mergeResults } from '../../src/shard/merge.ts';
import { planShards } from '../../src/shard/plan-shards.ts';
import { renderReport } from '../../src/results/terminal.ts';
import { UserError } from '../../src/util/errors.ts';
import { main } from '../../src/cli/main.ts';
import { results, testResult } from '../helpers/results.ts';

const SEED = Number(process.env.ITEST_FUZZ_SEED ?? 20261201);
const BUDGET_MS = Number(process.env.ITEST_FUZZ_SECONDS ?? 4) * 1000;

/** mulberry32: small, fast, and the same sequence on every machine. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

const KEYS = [
  'version',
  'firmware',
  'defaults',
  'discover',
  'tests',
  'name',
  'unit',
  'description',
  'timeout',
  'exit-status',
  'skip-status',
  'should-fail',
  'kernel-cmdline',
  'credentials',
  'mkosi-args',
  'qemu-args',
  'ram',
  'cpus',
  'retries',
  'infra-retries',
  'tags',
  'fail-on-coredump',
  'coredump-exclude',
  'units',
  'exclude',
  'extra-trees',
  'id',
  'total',
  'basis',
  'shards',
  'index',
  'plannedSeconds',
  'durations',
  'status',
  'reason',
  'attempts',
  'shard',
  'environment',
  'summary',
  'digest',
  'files',
  '__proto__',
  'constructor',
];
const STRINGS = [
  '',
  'A',
  'TEST-01',
  'TEST-é',
  'a b',
  'x,y',
  '../../etc/passwd',
  '--ephemeral=no',
  '-fC/tmp',
  'clean',
  '(unclosed',
  '.*',
  'TEST-*.service',
  '1G',
  'lots',
  '\u0000',
  '\u001b[31m',
  '::error::x',
  'x'.repeat(300),
  'pass',
  'fail',
  'durations',
  'timeouts',
  '2026-11-27T00:00:00.000Z',
  '%',
  '*a',
  '&a',
  '!!binary',
];
const NUMBERS = [0, 1, -1, 0.5, 77, 123, 255, 256, 64, 65, 86400, 86401, 1e9, 2 ** 31, 1e308, -0, 0.0001];

function randomValue(r: Rng, depth = 0): unknown {
  const k = r.int(depth > 3 ? 4 : 7);
  if (k === 0) return r.pick([null, true, false]);
  if (k === 1) return r.pick(NUMBERS);
  if (k === 2 || k === 3) return r.pick(STRINGS);
  if (k === 4) return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
  return Object.fromEntries(
    Array.from({ length: r.int(4) }, () => [r.pick(KEYS), randomValue(r, depth + 1)]),
  );
}

/** A random edit somewhere in a JSON-like value: delete, replace, retype, duplicate or add. */
function mutate(value: unknown, r: Rng, depth = 0): unknown {
  const here = depth > 0 && r.chance(0.25);
  if (here || value === null || typeof value !== 'object') {
    if (r.chance(0.15)) return undefined;
    return randomValue(r, depth);
  }
  if (Array.isArray(value)) {
    const out = [...value];
    const op = r.int(10);
    if (out.length === 0 || op < 2) out.push(randomValue(r, depth + 1));
    else if (op < 4) out.splice(r.int(out.length), 1);
    else if (op < 5) out.push(out[r.int(out.length)]);
    else {
      const i = r.int(out.length);
      out[i] = mutate(out[i], r, depth + 1);
    }
    return out;
  }
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(out);
  if (keys.length === 0 || r.chance(0.15)) out[r.pick(KEYS)] = randomValue(r, depth + 1);
  else {
    const key = r.pick(keys);
    const v = mutate(out[key], r, depth + 1);
    if (v === undefined) delete out[key];
    else out[key] = v;
  }
  return out;
}

/** Character-level damage to a text: the kind of thing a bad edit, a truncated upload or a fuzzer does. */
function damage(text: string, r: Rng): string {
  let s = text;
  for (let i = r.int(4); i > 0; i--) {
    const at = r.int(s.length + 1);
    const op = r.int(5);
    if (op === 0) s = s.slice(0, at);
    else if (op === 1) s = s.slice(0, at) + s.slice(at + 1 + r.int(8));
    else if (op === 2)
      s =
        s.slice(0, at) +
        r.pick([
          '{',
          '}',
          '[',
          ']',
          ':',
          '"',
          "'",
          '\n',
          '  ',
          '-',
          ',',
          '&a ',
          '*a',
          '!',
          '|',
          '>',
          '\t',
          '#',
          '%',
        ]) +
        s.slice(at);
    else if (op === 3) s = s.slice(0, at) + String.fromCharCode(r.int(0x3000)) + s.slice(at);
    else s = s + s.slice(at, at + r.int(40));
  }
  return s;
}

/** YAML snippets that exercise the parser's less travelled roads. */
const YAML_TRICKS = [
  'a: &a [x, x]\nb: [*a, *a, *a]\n',
  'version: 1\n---\nversion: 2\n',
  '%YAML 1.1\n---\nversion: 1\n',
  '? [complex, key]\n: value\n',
  'version: !!binary aGVsbG8=\n',
  'tests: !!set {a, b}\n',
  'tests: !!omap [a: 1]\n',
  'timeout: 2001-12-14t21:59:43.10-05:00\n',
  'x: *undefined_alias\n',
  'version: 1\nversion: 1\n',
  '<<: {version: 1}\n',
  'tests: [' + '['.repeat(200) + ']'.repeat(200) + ']\n',
  'tests:\n' + '- '.repeat(300) + 'x\n',
  'version: 0x1\ntests: [{name: A, timeout: .inf, ram: .nan, cpus: 1e400}]\n',
  '"\\uD800": x\n',
  'tests: [{name: A}]\ndefaults: {mkosi-args: [--debug]}\n',
];

function randomManifest(r: Rng): string {
  const names = ['TEST-01-A', 'TEST-02-B', 'T', 'TEST-03-C'];
  const base = {
    version: 1,
    ...(r.chance(0.5) ? { defaults: { timeout: 120, ram: '1G', 'kernel-cmdline': 'quiet' } } : {}),
    ...(r.chance(0.5) ? { discover: { units: 'TEST-*.service', exclude: ['TEST-9*'] } } : {}),
    tests: names
      .slice(0, 1 + r.int(4))
      .map((name) => ({ name, timeout: 60, tags: ['smoke'], 'mkosi-args': ['--debug'] })),
  };
  const kind = r.int(10);
  if (kind === 0) return damage(r.pick(YAML_TRICKS), r);
  if (kind === 1) return Array.from({ length: r.int(200) }, () => String.fromCharCode(r.int(128))).join('');
  // A fifth stays valid, so that what consumes a parsed manifest is fuzzed too.
  const value = kind === 2 || kind === 3 ? base : r.chance(0.9) ? mutate(base, r) : randomValue(r);
  let text = stringify(value, { collectionStyle: r.pick(['any', 'block', 'flow'] as const) });
  if (kind > 3 && r.chance(0.3)) text += r.pick(YAML_TRICKS);
  return kind > 3 && r.chance(0.5) ? damage(text, r) : text;
}

/** Runs fn; fine when it returns or throws a UserError of exit 2 with a message, a failure otherwise. */
async function clean(what: string, input: string, fn: () => unknown): Promise<'ok' | 'refused'> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    if (e instanceof UserError && e.exitCode === 2 && e.message.length > 0) return 'refused';
    assert.fail(
      `${what}: ${(e as Error)?.stack ?? String(e)}\n(seed ${SEED}) input:\n${input.slice(0, 2000)}`,
    );
  }
}

/** The CLI in this process: its exit status, never 70. */
async function cli(argv: string[], input: string): Promise<number> {
  const err: string[] = [];
  const { error, log } = console;
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  console.log = () => {};
  let code: number;
  try {
    code = await main(['node', 'itest', ...argv]);
  } finally {
    Object.assign(console, { error, log });
    process.exitCode = undefined;
  }
  assert.notEqual(
    code,
    70,
    `itest ${argv.join(' ')}: ${err.join('\n')}\n(seed ${SEED}) input:\n${input.slice(0, 2000)}`,
  );
  if (code === 2)
    assert.match(err.join('\n'), /^itest: \S/, `exit 2 without a message for:\n${input.slice(0, 2000)}`);
  return code;
}

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'itest-fuzz-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Loops until the budget is spent (at least min cases), counting what was accepted and refused. */
async function fuzz(min: number, one: (r: Rng, i: number) => Promise<'ok' | 'refused'>) {
  const r = prng(SEED);
  const seen = { ok: 0, refused: 0 };
  const end = performance.now() + BUDGET_MS;
  for (let i = 0; i < min || performance.now() < end; i++) seen[await one(r, i)]++;
  return seen;
}

describe('fuzzing the parsers: every input is accepted or refused with exit 2, never a crash', () => {
  it('manifests (YAML): parse, resolve, select; every 25th through `itest list`', async () => {
    const dir = join(root, 'cfg');
    await mkdir(join(dir, 'mkosi.extra/usr/lib/systemd/system'), { recursive: true });
    await writeFile(join(dir, 'mkosi.conf'), '');
    for (const u of ['TEST-01-A.service', 'TEST-03-C.service'])
      await writeFile(join(dir, 'mkosi.extra/usr/lib/systemd/system', u), '');
    const seen = await fuzz(300, async (r, i) => {
      const text = randomManifest(r);
      if (i % 25 === 0) {
        await writeFile(join(dir, 'itest.yaml'), text);
        return (await cli(['list', '--config', dir], text)) === 0 ? 'ok' : 'refused';
      }
      return clean('manifest', text, () => {
        const m = parseManifest(text, 'fuzz.yaml');
        const all = resolveTests(
          m,
          r.chance(0.5) ? ['TEST-01-A.service', 'TEST-x y.service'] : ['TEST-01-A.service'],
        );
        selectTests(all, { tests: r.chance(0.3) ? [r.pick(['TEST-*', 'T', 'NOPE'])] : [], tags: [] });
      });
    });
    // Both roads were taken: the generator makes valid manifests as well as broken ones.
    assert.ok(seen.ok > 0 && seen.refused > 0, JSON.stringify(seen));
  });

  const plan = planShards(
    ['A', 'B', 'C', 'D'].map((name) => ({ name, timeout: 60 })),
    2,
    { A: 30, B: 20 },
  );
  const shardResults = results([testResult('A', 'pass'), testResult('B', 'fail')]);

  it('shard plans: parse, select every shard, merge with the plan; every 25th through `itest report --plan`', async () => {
    const dl = join(root, 'dl/s1');
    await mkdir(dl, { recursive: true });
    await writeFile(
      join(dl, 'results.json'),
      JSON.stringify({
        ...shardResults,
        shard: { index: 1, total: 2, attempt: 1, plannedSeconds: 50, planId: plan.id },
      }),
    );
    const file = join(root, 'plan.json');
    const seen = await fuzz(300, async (r, i) => {
      const text = r.chance(0.85) ? (JSON.stringify(mutate(plan, r)) ?? '') : damage(JSON.stringify(plan), r);
      if (i % 25 === 0) {
        await writeFile(file, text);
        const code = await cli(
          ['report', '--merge', join(root, 'dl'), '--plan', file, '--output', join(root, 'out-p')],
          text,
        );
        return code === 2 ? 'refused' : 'ok';
      }
      return clean('plan', text, () => {
        const p = parseShardPlan(text, 'fuzz-plan.json');
        for (const s of p.shards) selectShard(p, s.index, '--shard');
        mergeResults(
          [
            {
              source: 'dl/s1/results.json',
              results: {
                ...shardResults,
                shard: { index: 1, total: p.total, attempt: 1, plannedSeconds: 1, planId: p.id },
              },
            },
          ],
          p,
        );
      });
    });
    assert.ok(seen.ok > 0 && seen.refused > 0, JSON.stringify(seen));
  });

  it('results.json files: load, merge, render; every 25th through `itest report --merge`', async () => {
    let n = 0;
    const seen = await fuzz(200, async (r, i) => {
      const base = {
        ...shardResults,
        ...(r.chance(0.5) ? { shard: { index: 1, total: 1, attempt: 1, plannedSeconds: 5 } } : {}),
      };
      const text = r.chance(0.85) ? (JSON.stringify(mutate(base, r)) ?? '') : damage(JSON.stringify(base), r);
      const dir = join(root, `res-${++n}`);
      await mkdir(join(dir, 'a'), { recursive: true });
      await writeFile(join(dir, 'a/results.json'), text);
      try {
        if (i % 25 === 0)
          return (await cli(['report', '--merge', dir, '--output', join(dir, 'out')], text)) === 2
            ? 'refused'
            : 'ok';
        return await clean('results', text, async () => {
          const { inputs, problems } = await loadShardResults([dir]);
          renderReport(mergeResults(inputs, undefined, problems));
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
    assert.ok(seen.ok > 0 && seen.refused > 0, JSON.stringify(seen));
  });
});

/**
 * junit.xml as its real consumers read it: mikepenz/action-junit-report and dorny/test-reporter (their
 * parsing code, vendored under test/third_party/), and xmllint against Jenkins xunit's JUnit schema.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { locateTests } from '../../src/config/test-locations.ts';
import { renderJUnit } from '../../src/results/junit.ts';
import type { Results, TestResult } from '../../src/results/model.ts';
import { readJUnitConsumers, type ConsumerViews } from '../helpers/junit-consumers.ts';
import { MANIFEST, UNIT_DIR, hasUnitFile, redRun, redRunTests, writeRepo } from '../helpers/junit-red-run.ts';

const XSD = fileURLToPath(new URL('../fixtures/junit/junit-10.xsd', import.meta.url));
const INSTALL =
  'xmllint is missing: install it with `apt-get install libxml2-utils` (Debian package libxml2-utils)';

/** xmllint's verdict on `file` against the schema: '' when valid, else its complaints. */
function xmllint(file: string): Promise<string> {
  return new Promise((done, fail) =>
    execFile('xmllint', ['--noout', '--schema', XSD, file], (err, _out, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') fail(new Error(INSTALL));
      else done(err ? stderr || err.message : '');
    }),
  );
}

/** Writes the JUnit file of `r` as the engine does (write-results.ts), locations relative to `repo`. */
async function writeJUnit(r: Results, repo: string): Promise<string> {
  const locations = locateTests(r.config, r.tests, repo, { manifestFallback: true });
  await mkdir(join(repo, 'out'));
  const file = join(repo, 'out', 'junit.xml');
  await writeFile(file, renderJUnit(r, { locations }), { flag: 'wx' });
  return file;
}

const subsOf = (t: TestResult) => t.digest?.subtests ?? [];
const failing = (s: string) => s === 'fail' || s === 'error' || s === 'timeout';

describe('junit.xml in its consumers: a red run of 25 tests', () => {
  let repo: string;
  let manifestLines: Map<string, number>;
  let tests: TestResult[];
  let file: string;
  let views: ConsumerViews;

  before(async () => {
    repo = await mkdtemp(join(tmpdir(), 'itest-junit-repo-'));
    tests = redRunTests();
    manifestLines = await writeRepo(repo, tests);
    file = await writeJUnit(redRun(repo, tests), repo);
    views = await readJUnitConsumers(file, repo);
  });
  after(() => rm(repo, { recursive: true, force: true }));

  it('is valid against the JUnit schema (xmllint)', async () => {
    assert.equal(await xmllint(file), '');
  });

  it('mikepenz: counts per test and subtest, each failure annotated on its unit file or manifest entry', () => {
    const subs = tests.flatMap(subsOf);
    const m = views.mikepenz;
    assert.equal(tests.length, 25);
    assert.equal(m.totalCount, 25 + subs.length);
    assert.equal(m.failed, tests.filter((t) => failing(t.status)).length + 2, 'two failed subtests');
    assert.equal(m.skipped, tests.filter((t) => t.status === 'skip').length + 1, 'one skipped subtest');
    assert.equal(m.passed, m.totalCount - m.failed - m.skipped);

    const expected = tests.flatMap((t) => {
      const where = hasUnitFile(t)
        ? `${UNIT_DIR}/${t.unit}:1`
        : `${MANIFEST}:${manifestLines.get(t.name) ?? 1}`;
      const own = failing(t.status) ? [`${t.name} ${where} ${t.reason}`] : [];
      const subFails = subsOf(t)
        .filter((s) => failing(s.result))
        .map((s) => `${t.name}/${s.name} ${where} ${s.message.trim().split('\n')[0]}`);
      return [...own, ...subFails];
    });
    // The title is "<file>.<name>" (upstream's format); the name is what identifies the test.
    const seen = m.annotations.map(
      (a) => `${a.title.slice(a.path.length + 1)} ${a.path}:${a.start_line} ${a.message}`,
    );
    assert.deepEqual(seen, expected);
    for (const a of m.annotations) {
      assert.ok(existsSync(join(repo, a.path)), `${a.path} exists in the repository`);
      assert.notEqual(a.path, 'src/core/service.c');
    }
    assert.ok(
      seen.includes(`TEST-20-ERROR ${MANIFEST}:1 the VM could not boot: mkosi exited with 1`),
      'a test in neither place goes on the manifest, line 1',
    );
  });

  it('dorny: one group per test with its subtests in it, and the status word said once', () => {
    const d = views.dorny;
    assert.deepEqual(
      d.groups.map((g) => [g.name, g.tests.map((t) => t.name)]),
      tests.map((t) => [t.name, [t.name, ...subsOf(t).map((s) => `${t.name}/${s.name}`)]]),
    );
    assert.equal(d.passed + d.failed + d.skipped, 25 + tests.flatMap(subsOf).length);
    assert.equal(d.failed, tests.filter((t) => failing(t.status)).length + 2);
    const group = d.groups.find((g) => g.name === 'TEST-11-FAIL')!;
    assert.deepEqual(
      group.tests.map((t) => [t.name, t.result, t.message]),
      [
        ['TEST-11-FAIL', 'failed', `fail: ${tests[10]!.reason}`],
        ['TEST-11-FAIL/one', 'success', undefined],
        ['TEST-11-FAIL/two', 'failed', 'fail: two broke'],
        ['TEST-11-FAIL/three', 'skipped', undefined],
      ],
    );
    assert.match(
      d.report,
      /\nTEST-11-FAIL\n {2}❌ TEST-11-FAIL\n\tfail: exit status 1[^\n]*\n {2}✅ TEST-11-FAIL\/one\n {2}❌ TEST-11-FAIL\/two\n\tfail: two broke\n/,
    );
    assert.match(d.report, /❌ TEST-12-FAIL\/gamma\n\terror: assertion failed: x == 1\n/);
    for (const text of [d.report, ...d.annotations.map((a) => a.message)])
      assert.doesNotMatch(
        text,
        /\b(fail|failed|error|timeout|skip|skipped)\b:? \1\b/i,
        'no doubled status word',
      );
  });
});

/** Characters XML 1.0 cannot carry (ESC, C0 controls, lone surrogates, U+FFFE, U+FFFF). */
const BAD = [
  '\x1b[31m',
  '\x00',
  '\x08',
  '\x0b',
  '\x0c',
  '\x0e',
  '\x1f',
  '\ud800',
  '\udfff',
  '\ufffe',
  '\uffff',
];
const bad = (s: string) => `${s}(${BAD.join('|')})`;
/** What `bad(s)` should read as: each invalid character replaced by U+FFFD. */
const replaced = (s: string) => `${s}(${BAD.map((b) => `\ufffd${b.slice(1)}`).join('|')})`;

describe('junit.xml with XML-invalid characters from the guest in every field', () => {
  let repo: string;
  let xml: string;
  let file: string;
  let views: ConsumerViews;
  const tests = redRunTests().map((t) =>
    t.name === 'TEST-11-FAIL'
      ? {
          ...t,
          name: bad('TEST-11'),
          reason: bad('exit status 1'),
          outputTail: [bad('out')],
          attempts: t.attempts.map((a) => ({ ...a, reason: bad('attempt') })),
          digest: {
            ...t.digest!,
            subtests: [
              { name: bad('sub'), result: 'fail', message: bad('broke') },
              { name: bad('skipped'), result: 'skip', message: bad('why') },
            ],
          },
        }
      : t,
  );

  before(async () => {
    repo = await mkdtemp(join(tmpdir(), 'itest-junit-repo-'));
    await writeRepo(repo, tests);
    file = await writeJUnit(redRun(repo, tests), repo);
    xml = await readFile(file, 'utf8');
    views = await readJUnitConsumers(file, repo);
  });
  after(() => rm(repo, { recursive: true, force: true }));

  it('holds none of them, each replaced by U+FFFD in names, messages and text, and xmllint validates it', async () => {
    for (const c of BAD.map((b) => b[0]!)) assert.ok(!xml.includes(c), `no ${JSON.stringify(c)} in the file`);
    for (const field of [
      `name="${replaced('TEST-11')}"`,
      `classname="${replaced('TEST-11')}"`,
      `name="${replaced('TEST-11')}/${replaced('sub')}"`,
      `message="${replaced('exit status 1')}"`,
      `message="${replaced('broke')}"`,
      `<skipped message="${replaced('why')}"/>`,
      `<system-out>${replaced('out')}</system-out>`,
      `attempt 1: fail: ${replaced('attempt')}`,
    ])
      assert.ok(xml.includes(field), `${JSON.stringify(field)} in the file`);
    assert.equal(await xmllint(file), '');
  });

  it('both parsers read every test, the bad ones by their replaced names and messages', () => {
    const m = views.mikepenz;
    assert.equal(m.totalCount, 25 + 2 + 2 + 1, 'no test lost: 25 tests, 5 subtests');
    assert.deepEqual(
      m.annotations
        .filter((a) => a.title.includes('TEST-11'))
        .map((a) => [a.title.slice(a.path.length + 1), a.message]),
      [
        [replaced('TEST-11'), replaced('exit status 1')],
        [`${replaced('TEST-11')}/${replaced('sub')}`, replaced('broke')],
      ],
    );
    const d = views.dorny;
    assert.equal(d.passed + d.failed + d.skipped, 30);
    assert.deepEqual(
      d.groups
        .filter((g) => g.name.startsWith('TEST-11'))
        .map((g) => [g.name, g.tests.map((t) => [t.name, t.result, t.message])]),
      [
        [
          replaced('TEST-11'),
          [
            [replaced('TEST-11'), 'failed', `fail: ${replaced('exit status 1')}`],
            [`${replaced('TEST-11')}/${replaced('sub')}`, 'failed', `fail: ${replaced('broke')}`],
            [`${replaced('TEST-11')}/${replaced('skipped')}`, 'skipped', undefined],
          ],
        ],
      ],
    );
  });
});

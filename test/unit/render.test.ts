import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { renderJUnit } from '../../src/results/junit.ts';
import { ansiPaint, renderReport, renderEnvironment, renderRepeats } from '../../src/results/terminal.ts';
import { summarize, type Status } from '../../src/results/model.ts';
import { mergeRepeats } from '../../src/results/repeats.ts';
import { assertValidResults, results, testResult } from '../helpers/results.ts';

type XmlNode = Record<string, unknown>;
const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

describe('results model and renderers', () => {
  const r = results([
    testResult('A', 'pass'),
    testResult('B', 'fail', {
      reason: 'exit status 1, expected 123 <&> "quoted"',
      outputTail: ['bad \u0001 byte', 'last line'],
      digest: {
        entries: 100,
        unitOutput: ['bad \u0001 byte', 'last line'],
        failedUnits: [{ unit: 'B.service', result: 'exit-code' }],
        errors: [{ unit: 'foo.service', message: 'foo broke' }],
        coredumps: [
          { pid: 42, comm: 'crasher', signal: 'SIGSEGV', exe: '/usr/bin/crasher', source: 'coredump' },
        ],
        sanitizers: ['test: ==42==ERROR: AddressSanitizer: heap-use-after-free'],
        kernel: [],
        emergency: false,
        subtests: [
          { name: 'one', result: 'pass', message: 'ok' },
          { name: 'two', result: 'fail', message: 'two broke\ndetail' },
        ],
        lastLines: [],
        notes: [],
      },
    }),
    testResult('C', 'skip'),
    testResult('D', 'timeout'),
    testResult('E', 'error'),
  ]);

  it('summarizes; ok only when nothing failed, timed out or errored, and never for zero tests', () => {
    assert.deepEqual(r.summary, {
      total: 5,
      pass: 1,
      fail: 1,
      skip: 1,
      timeout: 1,
      error: 1,
      flaky: 0,
      ok: false,
    });
    assert.equal(summarize([testResult('A', 'pass'), testResult('C', 'skip')]).ok, true);
    assert.equal(summarize([]).ok, false);
  });

  it('results.json validates against the published schema, and the schema rejects bad data', () => {
    assertValidResults(JSON.parse(JSON.stringify(r)));
    const bad = JSON.parse(JSON.stringify(r));
    bad.tests[0].status = 'passed';
    assert.throws(() => assertValidResults(bad), /status/);
    const bad2 = JSON.parse(JSON.stringify(r));
    delete bad2.environment.image.key;
    assert.throws(() => assertValidResults(bad2), /key/);
  });

  it('JUnit parses back with the right counts, elements and escaped text', () => {
    const xml = renderJUnit(r);
    assert.equal(XMLValidator.validate(xml), true);
    const doc = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '@',
      textNodeName: '#',
      parseAttributeValue: false,
      parseTagValue: false,
    }).parse(xml) as XmlNode;
    const suites = doc.testsuites as XmlNode;
    assert.equal(suites['@tests'], '7', 'five tests and two subtests');
    assert.equal(suites['@failures'], '2');
    assert.equal(suites['@errors'], '2');
    assert.equal(
      (suites.testsuite as XmlNode)['@skipped'],
      '1',
      'on the suite: the schema has none on testsuites',
    );
    const cases = asArray((suites.testsuite as XmlNode).testcase as XmlNode[]);
    assert.deepEqual(
      cases.map((c) => c['@name']),
      ['A', 'B', 'B/one', 'B/two', 'C', 'D', 'E'],
    );
    const [sub1, sub2] = [cases[2]!, cases[3]!];
    assert.deepEqual(
      [cases[1]!, sub1, sub2].map((c) => c['@classname']),
      ['B', 'B', 'B'],
      'one class for a test and its subtests, no unit suffix',
    );
    assert.equal(sub1.failure, undefined);
    assert.equal(
      (sub2.failure as XmlNode)['@message'],
      'two broke',
      'the status is the type, not in the message',
    );
    assert.equal((sub2.failure as XmlNode)['@type'], 'fail');
    assert.equal(cases[0]!['@file'], undefined, 'no location given, none written');
    cases.splice(2, 2);
    assert.equal(cases[0]!.failure, undefined);
    const failure = cases[1]!.failure as XmlNode;
    assert.equal(failure['@message'], 'exit status 1, expected 123 <&> "quoted"');
    assert.match(String(failure['#']), /rerun: itest run --config \. --test B/);
    assert.match(String(cases[1]!['system-out']), /bad \ufffd byte\nlast line/);
    assert.ok(cases[2]!.skipped !== undefined);
    assert.equal((cases[3]!.error as XmlNode)['@type'], 'timeout');
    assert.equal((cases[4]!.error as XmlNode)['@type'], 'error');
    assert.ok(!xml.includes('\u0001'));
  });

  it('JUnit puts each test and its subtests at the location given for the test', () => {
    const locations = new Map([
      ['B', { path: 'mkosi/mkosi.extra/usr/lib/systemd/system/B.service', line: 1 }],
    ]);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(
      renderJUnit(r, { locations }),
    ) as XmlNode;
    const cases = asArray(((doc.testsuites as XmlNode).testsuite as XmlNode).testcase as XmlNode[]);
    assert.deepEqual(
      cases.map((c) => `${c['@name']} ${c['@file'] ?? '-'}:${c['@line'] ?? '-'}`),
      [
        'A -:-',
        'B mkosi/mkosi.extra/usr/lib/systemd/system/B.service:1',
        'B/one mkosi/mkosi.extra/usr/lib/systemd/system/B.service:1',
        'B/two mkosi/mkosi.extra/usr/lib/systemd/system/B.service:1',
        'C -:-',
        'D -:-',
        'E -:-',
      ],
    );
  });

  it('the terminal report lists every test, explains failures with commands, and ends with the verdict', () => {
    const text = renderReport(r);
    for (const n of ['A', 'B', 'C', 'D', 'E']) assert.match(text, new RegExp(`\\b${n}\\b`));
    assert.match(text, /--- B \(fail\): exit status 1/);
    assert.match(text, /journalctl --file \/out\/B\.journal -u B\.service -o short-monotonic -p info/);
    assert.match(text, /rerun: {3}itest run --config \. --test B/);
    assert.ok(!text.includes('--- A ('), 'passing tests get no failure block');
    assert.match(text, /failed units:\n {6}B\.service \(exit-code\)/);
    assert.match(text, /coredumps:\n {6}crasher\[42\] SIGSEGV \/usr\/bin\/crasher/);
    assert.match(text, /sanitizer reports:\n {6}test: ==42==ERROR: AddressSanitizer/);
    assert.match(text, /dumps: {3}coredumpctl --file \/out\/B\.journal info/);
    assert.match(
      text,
      /FAIL {2}B .*\n {10}↳ one: pass\n {10}↳ two: fail\n/,
      'subtests are rows under their test',
    );
    assert.match(text, /failed subtests:\n {6}two: fail/);
    assert.match(text, /5 tests: 1 passed, 1 failed, 1 skipped, 1 timed out, 1 errors/);
    assert.match(text, /FAILED$/);
    assert.match(renderEnvironment(r), /image {6}itest-image-x86_64-mkosi24\.3-abc: hit/);
  });
});

/** Escapes made visible, to match them. */
const shown = (s: string) => s.replaceAll('\x1b', '<ESC>');

describe('--repeat: one result per test out of its runs', () => {
  const run = (name: string, status: Status, k: number) =>
    testResult(name, status, {
      reason: `${status} in run ${k}`,
      files: { console: `/out/repeat-${k}/${name}.console.log` },
    });
  const cases: [string, Status[], { status: Status; from: number; passed: number }][] = [
    ['all passed: the last run', ['pass', 'pass', 'pass'], { status: 'pass', from: 3, passed: 3 }],
    [
      'one failure: that run, whatever came after',
      ['pass', 'fail', 'pass'],
      { status: 'fail', from: 2, passed: 2 },
    ],
    ['the first failure wins', ['timeout', 'fail', 'error'], { status: 'timeout', from: 1, passed: 0 }],
    ['skips are no failure', ['skip', 'pass'], { status: 'pass', from: 2, passed: 1 }],
    ['an error late', ['pass', 'pass', 'error'], { status: 'error', from: 3, passed: 2 }],
  ];
  for (const [name, statuses, want] of cases)
    it(name, () => {
      const rounds = statuses.map((s, i) => [run('A', s, i + 1), run('B', 'pass', i + 1)]);
      const [a, b] = mergeRepeats(rounds);
      assert.equal(a!.status, want.status);
      assert.deepEqual(a!.repeats, { runs: statuses.length, passed: want.passed, statuses });
      assert.equal(
        a!.files.console,
        `/out/repeat-${want.from}/A.console.log`,
        'the chosen run keeps its logs',
      );
      assert.equal(
        a!.reason,
        `${want.status} in run ${want.from} (run ${want.from} of ${statuses.length}; ${want.passed}/${statuses.length} passed)`,
      );
      assert.equal(b!.repeats!.passed, statuses.length);
      const res = results([a!, b!]);
      assertValidResults(res);
      assert.equal(res.summary.ok, want.status === 'pass');
    });

  it('one run is the run itself: no repeats field, results.json as before', () => {
    const once = [run('A', 'fail', 1)];
    assert.deepEqual(mergeRepeats([once]), once);
    assert.equal(mergeRepeats([once])[0]!.repeats, undefined);
  });

  it('the report counts the passes per test; verdicts coloured only when painted', () => {
    const rounds = (['pass', 'fail', 'timeout', 'pass'] as Status[]).map((s, i) => [run('TEST-X', s, i + 1)]);
    const r = results(mergeRepeats(rounds));
    const plain = renderReport(r);
    assert.match(plain, /^Repeats:\n {2}TEST-X: 2\/4 passed \(fail x1, timeout x1\)$/m);
    assert.ok(!plain.includes('\x1b'), 'no escapes unless painted');
    assert.match(plain, /^ {2}FAIL {2}TEST-X/m);
    const painted = renderReport(r, ansiPaint);
    assert.match(shown(painted), /^ {2}<ESC>\[31mFAIL<ESC>\[0m {2}TEST-X/m);
    assert.match(shown(painted), /\n<ESC>\[31mFAILED<ESC>\[0m$/);
    assert.equal(shown(painted).replace(/<ESC>\[\d+m/g, ''), plain, 'the colours are all that differs');
    assert.deepEqual(renderRepeats(results([testResult('A', 'pass')])), [], 'nothing without --repeat');
  });

  it('painting never lets guest escapes through: the reason is filtered before the colour is added', () => {
    const r = results([testResult('A', 'pass', { reason: 'ok \x1b[2J\x1b]0;t\x07 done' })]);
    assert.match(shown(renderReport(r, ansiPaint)), /<ESC>\[32mPASS<ESC>\[0m {2}A +40\.5 s +ok ]0;t done/);
  });
});

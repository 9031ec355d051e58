import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { renderJUnit } from '../../src/results/junit.ts';
import { renderReport, renderEnvironment } from '../../src/results/terminal.ts';
import { summarize } from '../../src/results/model.ts';
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
    assert.equal(suites['@skipped'], '1');
    const cases = asArray((suites.testsuite as XmlNode).testcase as XmlNode[]);
    assert.deepEqual(
      cases.map((c) => c['@name']),
      ['A', 'B', 'B/one', 'B/two', 'C', 'D', 'E'],
    );
    const [sub1, sub2] = [cases[2]!, cases[3]!];
    assert.equal(sub1['@classname'], 'itest.B');
    assert.equal(sub1.failure, undefined);
    assert.equal((sub2.failure as XmlNode)['@message'], 'fail: two broke');
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

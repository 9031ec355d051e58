import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkManifest, parseManifest } from '../../src/config/manifest.ts';
import { UserError } from '../../src/util/errors.ts';

describe('manifest', () => {
  it('parses a valid manifest with defaults, discovery and tests', () => {
    const m = parseManifest(
      [
        'version: 1',
        'firmware: linux',
        'defaults:',
        '  timeout: 60',
        '  ram: 2G',
        'discover:',
        '  units: TEST-*.service',
        '  exclude: [TEST-99-*.service]',
        'tests:',
        '  - name: TEST-01-BASIC',
        '    should-fail: true',
        '    kernel-cmdline: "quiet loglevel=3"',
        '    credentials:',
        '      my.cred: |',
        '        line one',
        '        line two',
      ].join('\n'),
      'itest.yaml',
    );
    assert.equal(m.firmware, 'linux');
    assert.deepEqual(m.discover, {
      units: ['TEST-*.service'],
      exclude: ['TEST-99-*.service'],
      extraTrees: [],
    });
    assert.equal(m.defaults.timeout, 60);
    assert.equal(m.tests[0]?.['should-fail'], true);
    assert.equal(m.tests[0]?.credentials?.['my.cred'], 'line one\nline two\n');
  });

  it('names file, line, column, field and a did-you-mean fix for an unknown field', () => {
    const text = 'version: 1\ntests:\n  - name: A\n    timout: 5\n';
    const problems = checkManifest(text);
    assert.equal(problems.length, 1);
    const p = problems[0]!;
    assert.equal(p.line, 4);
    assert.equal(p.column, 5);
    assert.equal(p.field, 'tests[0].timout');
    assert.match(p.message, /unknown field "timout"/);
    assert.match(p.fix, /did you mean "timeout"/);
    assert.throws(
      () => parseManifest(text, 'dir/itest.yaml'),
      (e: unknown) => e instanceof UserError && /dir\/itest\.yaml:4:5: tests\[0\]\.timout/.test(e.message),
    );
  });

  it('reports wrong types with the value it got, at the value position', () => {
    const problems = checkManifest('version: 1\ntests:\n  - name: A\n    timeout: soon\n    cpus: 0\n');
    const timeout = problems.find((p) => p.field === 'tests[0].timeout');
    assert.ok(timeout, JSON.stringify(problems));
    assert.equal(timeout.line, 4);
    assert.match(timeout.message, /must be number.*"soon"/);
    assert.match(timeout.fix, /Seconds from VM start/);
    const cpus = problems.find((p) => p.field === 'tests[0].cpus');
    assert.ok(cpus);
    assert.equal(cpus.line, 5);
  });

  it('reports a missing name, duplicate names and defaults that cannot be defaults', () => {
    const problems = checkManifest(
      'version: 1\ndefaults:\n  unit: x.service\ntests:\n  - timeout: 3\n  - name: A\n  - name: A\n',
    );
    const fields = problems.map((p) => p.field);
    assert.ok(fields.includes('tests[0].name'), fields.join());
    assert.ok(
      problems.some(
        (p) => p.field === 'tests[2].name' && /duplicate test name "A"/.test(p.message) && p.line === 7,
      ),
    );
    assert.ok(problems.some((p) => p.field === 'defaults.unit' && p.line === 3));
  });

  it('reports YAML syntax errors with their position', () => {
    const problems = checkManifest('version: 1\ntests:\n  - name: A\n   bad: [\n');
    assert.ok(problems.length > 0);
    assert.equal(problems[0]!.field, '(yaml)');
    assert.ok(problems[0]!.line >= 3);
  });

  it('rejects a manifest with no tests and no discovery, and a bad version', () => {
    assert.ok(checkManifest('version: 1\n').some((p) => /no tests/.test(p.message)));
    assert.ok(
      checkManifest('version: 2\ntests: [{name: A}]\n').some(
        (p) => p.field === 'version' && /must be 1/.test(p.message),
      ),
    );
  });

  it('rejects an invalid coredump-exclude regex at its line', () => {
    const problems = checkManifest(
      'version: 1\ndefaults:\n  coredump-exclude: "(unclosed"\ntests: [{name: A}]\n',
    );
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.field, 'defaults.coredump-exclude');
    assert.equal(problems[0]!.line, 3);
    assert.match(problems[0]!.message, /not a valid regular expression/);
  });

  it('validates names, units, ram sizes and tags', () => {
    const problems = checkManifest(
      'version: 1\ntests:\n  - name: "../evil"\n  - name: B\n    unit: "b.mount"\n  - name: C\n    ram: lots\n  - name: D\n    tags: ["a b"]\n',
    );
    const fields = problems.map((p) => p.field);
    for (const f of ['tests[0].name', 'tests[1].unit', 'tests[2].ram', 'tests[3].tags[0]'])
      assert.ok(fields.includes(f), `${f} in ${fields.join()}`);
  });
});

describe('documentation', () => {
  it('the manifest example in the README and the demo manifest are valid', async () => {
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /### The manifest[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(block, 'README has a yaml manifest example');
    assert.deepEqual(checkManifest(block), []);
    const demo = await readFile(new URL('../../examples/demo/itest.yaml', import.meta.url), 'utf8');
    assert.deepEqual(checkManifest(demo), []);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../../src/config/manifest.ts';
import { resolveTests, selectTests } from '../../src/config/resolve-tests.ts';
import { findUnitFiles } from '../../src/config/discovery.ts';
import { UserError } from '../../src/util/errors.ts';

const manifest = (text: string) => parseManifest(text, 'itest.yaml');

describe('test planning', () => {
  it('resolves defaults, merges lists and lets tests override', () => {
    const [a, b] = resolveTests(
      manifest(
        'version: 1\ndefaults:\n  timeout: 50\n  kernel-cmdline: quiet\n  tags: [all]\n  ram: 2G\ntests:\n  - name: A\n    timeout: 10\n    kernel-cmdline: [debug]\n    tags: [x]\n  - name: B\n    unit: other.service\n',
      ),
      [],
    );
    assert.equal(a?.timeout, 10);
    assert.deepEqual(a?.kernelCmdline, ['quiet', 'debug']);
    assert.deepEqual(a?.tags, ['all', 'x']);
    assert.equal(a?.unit, 'A.service');
    assert.equal(a?.ram, 2 * 1024 ** 3);
    assert.equal(a?.exitStatus, 123);
    assert.equal(a?.skipStatus, 77);
    assert.equal(a?.infraRetries, 1);
    assert.equal(b?.timeout, 50);
    assert.equal(b?.unit, 'other.service');
  });

  it('adds discovered units after listed tests, excluding and de-duplicating', () => {
    const specs = resolveTests(
      manifest(
        'version: 1\ndiscover:\n  units: TEST-*.service\n  exclude: TEST-9*\ntests:\n  - name: TEST-02-B\n    should-fail: true\n',
      ),
      ['TEST-01-A.service', 'TEST-02-B.service', 'TEST-90-X.service', 'TEST-03.socket', 'other.service'],
    );
    assert.deepEqual(
      specs.map((s) => [s.name, s.source, s.shouldFail]),
      [
        ['TEST-02-B', 'discovered', true],
        ['TEST-01-A', 'discovered', false],
      ],
    );
  });

  it('finds unit files in mkosi.extra and extra trees', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-disc-'));
    await mkdir(join(dir, 'mkosi.extra/usr/lib/systemd/system'), { recursive: true });
    await mkdir(join(dir, 'more/etc/systemd/system'), { recursive: true });
    await writeFile(join(dir, 'mkosi.extra/usr/lib/systemd/system/TEST-1.service'), '');
    await writeFile(join(dir, 'more/etc/systemd/system/TEST-2.service'), '');
    assert.deepEqual(await findUnitFiles(dir), ['TEST-1.service']);
    assert.deepEqual(await findUnitFiles(dir, ['more']), ['TEST-1.service', 'TEST-2.service']);
  });

  it('selects by name, glob, unit and tags; an unknown name is an error, not an empty run', () => {
    const all = resolveTests(
      manifest(
        'version: 1\ntests:\n  - {name: TEST-01-A, tags: [smoke]}\n  - {name: TEST-02-B}\n  - {name: OTHER, tags: [smoke, slow]}\n',
      ),
      [],
    );
    const names = (sel: { tests: string[]; tags: string[] }) => selectTests(all, sel).map((t) => t.name);
    assert.deepEqual(names({ tests: [], tags: [] }), ['TEST-01-A', 'TEST-02-B', 'OTHER']);
    assert.deepEqual(names({ tests: ['TEST-*'], tags: [] }), ['TEST-01-A', 'TEST-02-B']);
    assert.deepEqual(names({ tests: ['OTHER.service'], tags: [] }), ['OTHER']);
    assert.deepEqual(names({ tests: [], tags: ['smoke'] }), ['TEST-01-A', 'OTHER']);
    assert.deepEqual(names({ tests: [], tags: ['smoke', 'slow'] }), ['OTHER']);
    assert.throws(
      () => names({ tests: ['NOPE'], tags: [] }),
      (e: unknown) => e instanceof UserError && /--test NOPE: no such test/.test(e.message),
    );
    assert.throws(() => names({ tests: [], tags: ['none'] }), /no test matches/);
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMkosiIni } from '../../src/image/mkosi-ini.ts';
import { inputRole } from '../../src/image/base-key.ts';
import { computeImageKey, explainLines } from '../../src/engine/image-key.ts';
import { ROOT } from '../helpers/e2e-cli.ts';

describe('mkosi config syntax (pure)', () => {
  it('sections, indented continuation lines, repeated keys, comments', () => {
    const a = parseMkosiIni(
      [
        '# a comment',
        '[Distribution]',
        'Distribution=debian',
        'Release = trixie',
        '',
        '[Content]',
        'Packages=',
        '        systemd',
        '        # a comment inside the list',
        '        udev',
        'Packages=jq',
        'not an assignment',
      ].join('\n'),
    );
    assert.deepEqual(
      a.map((x) => [x.section, x.key, x.value, x.line]),
      [
        ['Distribution', 'Distribution', 'debian', 3],
        ['Distribution', 'Release', 'trixie', 4],
        ['Content', 'Packages', 'systemd\nudev', 7],
        ['Content', 'Packages', 'jq', 11],
      ],
    );
  });
});

describe('what belongs to the base key', () => {
  const table: [string, ReturnType<typeof inputRole>][] = [
    ['mkosi.conf', 'conf'],
    ['mkosi.local.conf', 'conf'],
    ['mkosi.conf.d/10-packages.conf', 'conf'],
    ['mkosi.conf.d/20-sub/mkosi.conf', 'conf'],
    ['mkosi.images/tools/mkosi.conf', 'conf'],
    ['mkosi.images/tools/mkosi.pkgmngr/etc/apt/sources.list', 'base'],
    ['mkosi.profiles/dev/mkosi.conf', 'conf'],
    ['mkosi.pkgmngr/etc/apt/sources.list.d/mkosi.sources', 'base'],
    ['mkosi.sandbox', 'base'],
    ['mkosi.tools.conf', 'base'],
    ['mkosi.packages/local.deb', 'base'],
    ['mkosi.prepare', 'base'],
    ['mkosi.prepare.chroot', 'base'],
    ['mkosi.prepare.d/10-x.sh', 'base'],
    ['mkosi.skeleton/etc/hostname', 'base'],
    ['mkosi.skeleton.tar.zst', 'base'],
    ['mkosi.extra/usr/lib/systemd/system/TEST-01.service', 'image'],
    ['mkosi.build', 'image'],
    ['mkosi.build.chroot', 'image'],
    ['mkosi.postinst', 'image'],
    ['mkosi.finalize', 'image'],
    ['mkosi.repart/10-root.conf', 'image'],
    ['mkosi.credentials/x', 'image'],
    ['extra:src/main.c', 'image'],
  ];
  for (const [path, role] of table) it(`${path} -> ${role}`, () => assert.equal(inputRole(path), role));
});

describe('the two keys of a real config (examples/demo copied, changed one input at a time)', () => {
  const keys = async (dir: string, globs: string[] = []) =>
    computeImageKey({
      configDir: dir,
      mkosiVersion: '24.3',
      arch: 'x86_64',
      userKey: '',
      globs,
      globBase: dir,
      prefix: 'itest-image',
    });
  const copy = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-base-key-'));
    await cp(join(ROOT, 'examples/demo'), dir, { recursive: true });
    return dir;
  };
  const edit = async (file: string, f: (s: string) => string) =>
    writeFile(file, f(await readFile(file, 'utf8')));

  it('a test unit, a source file or an image-only setting changes the image key, not the base key', async () => {
    const dir = await copy();
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src/main.c'), 'int main(void) { return 0; }\n');
    const before = await keys(dir, ['src/**']);
    assert.match(before.base.key, /^itest-image-base-x86_64-mkosi24\.3-[0-9a-f]{32}$/);
    assert.equal(before.base.restorePrefix, 'itest-image-base-x86_64-mkosi24.3-');
    for (const change of [
      () =>
        edit(
          join(dir, 'mkosi.extra/usr/lib/systemd/system/TEST-01-BASIC.service'),
          (s) => `${s}\n# changed\n`,
        ),
      () => writeFile(join(dir, 'src/main.c'), 'int main(void) { return 1; }\n'),
      () => edit(join(dir, 'mkosi.conf'), (s) => s.replace('ImageId=itest-demo', 'ImageId=itest-demo2')),
      () => edit(join(dir, 'mkosi.conf'), (s) => `${s}\n# only a comment\n`),
      () => writeFile(join(dir, 'mkosi.build'), '#!/bin/sh\nmake\n', { mode: 0o755 }),
    ]) {
      const was = await keys(dir, ['src/**']);
      await change();
      const now = await keys(dir, ['src/**']);
      assert.notEqual(now.key, was.key, 'the image key changes');
      assert.equal(now.base.key, was.base.key, 'the base key holds');
    }
  });

  it('a package, the release, the package manager config or a prepare script changes both keys', async () => {
    const dir = await copy();
    for (const change of [
      () =>
        edit(join(dir, 'mkosi.conf'), (s) =>
          s.replace('        openssh-server', '        openssh-server\n        jq'),
        ),
      () => edit(join(dir, 'mkosi.conf'), (s) => s.replace('Release=trixie', 'Release=forky')),
      () =>
        edit(
          join(dir, 'mkosi.pkgmngr/etc/apt/sources.list.d/mkosi.sources'),
          (s) => `${s}\n# another mirror\n`,
        ),
      () => writeFile(join(dir, 'mkosi.prepare'), '#!/bin/sh\ntrue\n', { mode: 0o755 }),
    ]) {
      const was = await keys(dir);
      await change();
      const now = await keys(dir);
      assert.notEqual(now.key, was.key);
      assert.notEqual(now.base.key, was.base.key);
    }
  });

  it('--explain marks each input with its keys; a config file is followed by its base settings', async () => {
    const k = await keys(await copy());
    const lines = explainLines(k);
    assert.ok(
      lines.some((l) => /^image base meta +mkosi-version {2}24\.3$/.test(l)),
      lines.join('\n'),
    );
    assert.ok(lines.some((l) => /^image {6}file +mkosi\.conf {2}644 [0-9a-f]{64}$/.test(l)));
    const conf = lines.findIndex((l) => /^image {6}file +mkosi\.conf /.test(l));
    assert.match(lines[conf + 1]!, /^ {6}base setting mkosi\.conf \[Distribution\] Distribution {2}debian$/);
    assert.ok(
      lines.some((l) =>
        /^ {6}base setting mkosi\.conf \[Content\] Packages {2}linux-image-cloud-amd64 systemd /.test(l),
      ),
    );
    assert.ok(
      lines.some((l) =>
        /^image base file +mkosi\.pkgmngr\/etc\/apt\/sources\.list\.d\/mkosi\.sources /.test(l),
      ),
    );
    assert.ok(
      lines.some((l) =>
        /^image {6}file +mkosi\.extra\/usr\/lib\/systemd\/system\/TEST-01-BASIC\.service /.test(l),
      ),
    );
    assert.ok(!lines.some((l) => /ImageId/.test(l)), 'an [Output] setting is no base setting');
  });
});

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, cp, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { computeImageKey } from '../../src/engine/image-key.ts';
import { collectExtraInputs, isMkosiInput } from '../../src/image/hash-inputs.ts';

async function makeConfig(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'itest-hash-'));
  await writeFile(join(dir, 'mkosi.conf'), '[Distribution]\nDistribution=debian\n');
  await mkdir(join(dir, 'mkosi.extra/usr/lib/systemd/system'), { recursive: true });
  await writeFile(join(dir, 'mkosi.extra/usr/lib/systemd/system/T.service'), '[Service]\nExecStart=true\n');
  await writeFile(join(dir, 'mkosi.build'), '#!/bin/sh\n');
  await chmod(join(dir, 'mkosi.build'), 0o755);
  await symlink('T.service', join(dir, 'mkosi.extra/usr/lib/systemd/system/alias.service'));
  await writeFile(join(dir, 'itest.yaml'), 'version: 1\n');
  await writeFile(join(dir, 'README.md'), 'docs\n');
  return dir;
}

const key = (configDir: string, extra: Partial<Parameters<typeof computeImageKey>[0]> = {}) =>
  computeImageKey({
    configDir,
    mkosiVersion: '24.3',
    arch: 'x86_64',
    userKey: '',
    globs: [],
    globBase: configDir,
    prefix: 'itest-image',
    ...extra,
  });

describe('config hash', () => {
  it('is stable across copies, permissions other than x, and ignores outputs, caches, VCS and non-mkosi files', async () => {
    const a = await makeConfig();
    const b = await mkdtemp(join(tmpdir(), 'itest-hash-copy-'));
    await cp(a, b, { recursive: true, verbatimSymlinks: true });
    await chmod(join(b, 'mkosi.conf'), 0o600);
    await chmod(join(b, 'mkosi.build'), 0o700);
    for (const d of ['mkosi.output', 'mkosi.cache', '.git']) {
      await mkdir(join(b, d), { recursive: true });
      await writeFile(join(b, d, 'junk'), String(Math.random()));
    }
    await writeFile(join(b, 'README.md'), 'changed docs\n');
    await writeFile(join(b, 'itest.yaml'), 'version: 1\ntests: []\n');
    const ka = await key(a);
    const kb = await key(b);
    assert.equal(ka.key, kb.key);
    assert.match(ka.key, /^itest-image-x86_64-mkosi24\.3-[0-9a-f]{32}$/);
  });

  it('changes with content, the executable bit, a symlink target, a new file, mkosi version, arch and user key', async () => {
    const dir = await makeConfig();
    const base = (await key(dir)).key;
    const changed = new Set<string>([base]);
    const expectNew = async (what: string, extra = {}) => {
      const k = (await key(dir, extra)).key;
      assert.ok(!changed.has(k), `${what} did not change the key`);
      changed.add(k);
    };
    await writeFile(join(dir, 'mkosi.conf'), '[Distribution]\nDistribution=fedora\n');
    await expectNew('content');
    await chmod(join(dir, 'mkosi.build'), 0o644);
    await expectNew('executable bit');
    await rm(join(dir, 'mkosi.extra/usr/lib/systemd/system/alias.service'));
    await symlink('other.service', join(dir, 'mkosi.extra/usr/lib/systemd/system/alias.service'));
    await expectNew('symlink target');
    await mkdir(join(dir, 'mkosi.conf.d'));
    await writeFile(join(dir, 'mkosi.conf.d/10-x.conf'), '[Content]\n');
    await expectNew('new drop-in');
    await expectNew('mkosi version', { mkosiVersion: '25.3' });
    await expectNew('arch', { arch: 'aarch64' });
    await expectNew('user key', { userKey: 'snapshot-2026-11' });
  });

  it('includes files from extra globs and explains every input', async () => {
    const dir = await makeConfig();
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src/main.c'), 'int main(){}\n');
    const without = await key(dir);
    const withSrc = await key(dir, { globs: ['src/**/*.c'] });
    assert.notEqual(without.key, withSrc.key);
    const names = withSrc.lines.map((l) => l.name);
    for (const n of [
      'mkosi-version',
      'architecture',
      'user-key',
      'mkosi.conf',
      'mkosi.build',
      'mkosi.extra/usr/lib/systemd/system/T.service',
      'extra:src/main.c',
    ]) {
      assert.ok(names.includes(n), `${n} missing from explain lines`);
    }
    assert.ok(!names.includes('itest.yaml') && !names.includes('README.md'));
    await writeFile(join(dir, 'src/main.c'), 'int main(){return 1;}\n');
    assert.notEqual((await key(dir, { globs: ['src/**/*.c'] })).key, withSrc.key);
  });

  it('knows which names mkosi reads', () => {
    for (const n of [
      'mkosi.conf',
      'mkosi.conf.d',
      'mkosi.build.chroot',
      'mkosi.postinst.d',
      'mkosi.extra.tar.zst',
      'mkosi.pkgmngr',
      'mkosi.sandbox',
      'mkosi.local.conf',
      'mkosi.version',
      'mkosi.credentials',
    ]) {
      assert.ok(isMkosiInput(n), n);
    }
    for (const n of [
      'mkosi.output',
      'mkosi.cache',
      'mkosi.builddir',
      'mkosi.tools',
      'itest.yaml',
      'mkosi.confx',
      '.git',
    ])
      assert.ok(!isMkosiInput(n), n);
  });

  it('--hash-glob src/** takes each file once, though the glob matches the directory and its files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-globs-'));
    await mkdir(join(dir, 'src/lib'), { recursive: true });
    await writeFile(join(dir, 'src/main.c'), 'int main(void) { return 0; }\n');
    await writeFile(join(dir, 'src/lib/a.c'), '\n');
    const paths = (await collectExtraInputs(dir, ['src/**', 'src/*.c'])).map((f) => f.path);
    assert.deepEqual(paths, ['extra:src', 'extra:src/lib', 'extra:src/lib/a.c', 'extra:src/main.c']);
  });
});

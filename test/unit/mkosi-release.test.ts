/**
 * installMkosiRelease with the real @actions/tool-cache against a loopback server that serves tarballs
 * shaped like GitHub's archive of the mkosi repository, built from a real mkosi package on this machine
 * (Debian sid's 27.1 on CI, else the system's), so `--version` really runs mkosi.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tc from '@actions/tool-cache';
import {
  installMkosiRelease,
  parseMkosiRelease,
  type MkosiRelease,
} from '../../src/action/runner/mkosi-release.ts';
import { runCommand } from '../../src/util/process.ts';
import { UserError } from '../../src/util/errors.ts';
import {
  ArchiveServer,
  buildMkosiArchive,
  findRealMkosi,
  MKOSI_PACKAGE_CANDIDATES,
  type RealMkosi,
} from '../helpers/mkosi-archive.ts';

const real = await findRealMkosi();
const skip = real ? false : `no mkosi package in ${MKOSI_PACKAGE_CANDIDATES.join(' or ')}`;
const server = new ArchiveServer();
let work: string;
const saved: Record<string, string | undefined> = {};

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'itest-mkosi-release-'));
  const env = { RUNNER_TOOL_CACHE: join(work, 'toolcache'), RUNNER_TEMP: join(work, 'temp') };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  await server.start();
  if (real) {
    const { packageDir, version } = real as RealMkosi;
    const archive = async (tag: string, pkg?: string) => {
      const out = join(work, `v${tag}.tar.gz`);
      await buildMkosiArchive({ tagVersion: tag, packageDir: pkg, out });
      await server.serve(tag, out);
    };
    await archive(version, packageDir); // the real thing
    await archive('99.2', packageDir); // says it is 99.2, prints the real version
    await archive('99.3'); // launcher without the Python package
  }
});

after(async () => {
  await server.stop();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await rm(work, { recursive: true, force: true });
});

describe('mkosi-release names', () => {
  it('accepts 25.3, v25.3, 26 and 25.3.1', () => {
    assert.equal(parseMkosiRelease('25.3'), '25.3');
    assert.equal(parseMkosiRelease('v25.3'), '25.3');
    assert.equal(parseMkosiRelease('26'), '26');
    assert.equal(parseMkosiRelease('25.3.1'), '25.3.1');
  });

  it('rejects anything else before any request, naming the input and the accepted form', async () => {
    const before = server.requests.length;
    for (const bad of [
      '',
      'latest',
      'v',
      '25.',
      '.3',
      '25.3.1.2',
      '025',
      '25.3-rc1',
      '../25.3',
      '25.3/../../x',
      '25.3 --evil',
      'https://example.com/x',
      'V25',
    ]) {
      await assert.rejects(
        installMkosiRelease(bad, { baseUrl: server.baseUrl }),
        (e: Error) =>
          e instanceof UserError &&
          e.message.startsWith(`mkosi-release: ${JSON.stringify(bad)} is not a mkosi release name`) &&
          e.message.includes('e.g. 25.3, v25.3 or 26'),
        bad,
      );
    }
    assert.equal(server.requests.length, before);
  });
});

describe('installMkosiRelease (real @actions/tool-cache, loopback archive server)', { skip }, () => {
  const { version } = real ?? { version: '' };
  let first: MkosiRelease;

  it('says so when python3 is missing, before downloading anything', async () => {
    const emptyPath = await mkdtemp(join(work, 'nopython-'));
    await assert.rejects(
      installMkosiRelease(version, { baseUrl: server.baseUrl, env: { PATH: emptyPath } }),
      (e: Error) =>
        e instanceof UserError &&
        /needs python3 \(3\.9 or newer\) on the runner, but python3 was not found on PATH/.test(e.message) &&
        e.message.includes('actions/setup-python'),
    );
    assert.deepEqual(server.requests, []);
  });

  it('downloads, caches and runs the release the first time', async () => {
    const lines: string[] = [];
    first = await installMkosiRelease(`v${version}`, {
      baseUrl: server.baseUrl,
      log: (l) => lines.push(l),
    });
    assert.deepEqual(server.requests, [`/systemd/mkosi/archive/refs/tags/v${version}.tar.gz`]);
    assert.equal(first.cached, false);
    assert.equal(first.version, version);
    assert.ok(first.dir.startsWith(join(work, 'toolcache', 'mkosi')), first.dir);
    assert.deepEqual(first.command, [join(first.dir, 'bin', 'mkosi')]);
    assert.ok(existsSync(join(first.dir, 'mkosi', '__main__.py')));
    assert.ok(lines.some((l) => l.includes(`downloading ${server.baseUrl}/v${version}.tar.gz`)));
    // The command is a plain argv prefix: no environment, no shell.
    const r = await runCommand([...first.command, '--version'], {
      env: { PATH: process.env.PATH },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `mkosi ${version}`);
    // tool-cache keys it by full semver (27.1 -> 27.1.0); the archive and its extraction are gone.
    const semver = [...version.split('.'), '0', '0'].slice(0, 3).join('.');
    assert.equal(tc.find('mkosi', semver), first.dir);
    assert.deepEqual(await readdir(join(work, 'temp')), []);
  });

  it('serves the same release from the tool cache the second time (no request)', async () => {
    const lines: string[] = [];
    const second = await installMkosiRelease(version, {
      baseUrl: server.baseUrl,
      log: (l) => lines.push(l),
    });
    assert.equal(server.requests.length, 1);
    assert.equal(second.cached, true);
    assert.deepEqual(second.command, first.command);
    assert.equal(second.dir, first.dir);
    assert.ok(
      lines.some((l) => /cached/.test(l)),
      lines.join('\n'),
    );
  });

  it('names the release and the URL on HTTP 404', async () => {
    const url = `${server.baseUrl}/v99.1.tar.gz`;
    await assert.rejects(
      installMkosiRelease('99.1', { baseUrl: server.baseUrl }),
      (e: Error) =>
        e instanceof UserError &&
        e.message.includes('mkosi release 99.1 does not exist') &&
        e.message.includes(`${url} answered HTTP 404`),
    );
    assert.equal(server.requests.at(-1), '/systemd/mkosi/archive/refs/tags/v99.1.tar.gz');
  });

  it('fails when the downloaded mkosi prints another version, and does not keep it', async () => {
    await assert.rejects(
      installMkosiRelease('99.2', { baseUrl: server.baseUrl }),
      (e: Error) =>
        e instanceof UserError &&
        e.message.includes(`the mkosi 99.2 just downloaded says it is mkosi ${version}, not 99.2`) &&
        e.message.includes('bin/mkosi --version') &&
        e.message.includes(`printed: mkosi ${version}`),
    );
    assert.equal(tc.find('mkosi', '99.2.0'), '');
  });

  it('fails with what ran and what it printed when the tree does not run', async () => {
    await assert.rejects(
      installMkosiRelease('99.3', { baseUrl: server.baseUrl }),
      (e: Error) =>
        e instanceof UserError &&
        /the mkosi 99\.3 just downloaded does not run: `\S+\/bin\/mkosi --version` exited 1 and printed: .*No module named mkosi/.test(
          e.message,
        ),
    );
    assert.equal(tc.find('mkosi', '99.3.0'), '');
  });
});

/**
 * The tar guard of the image cache restore: member checks on GNU tar's real listing, and restores of
 * planted cache entries through the real @actions/cache against the local services (Twirp stand-in +
 * Azurite): an archive that writes outside the image directory is a miss with a warning naming the
 * member, and nothing is written; a good one (with an internal symlink) restores whole.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { ActionsServices } from '../helpers/actions-services.ts';
import { GitHubImageCache, killCacheTar } from '../../src/action/github/actions-cache.ts';
import { listProcesses } from '../../src/util/process.ts';
import { MemberCheck, parseListingLine, type TarMember } from '../../src/action/github/tar-members.ts';
import { checkArchive, parseCacheTarArgv, withTarGuard } from '../../src/action/github/tar-guard.ts';

let base: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'itest-tg-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** GNU tar's verbose listing, as the guard asks for it. */
function listing(archive: string): string[] {
  return execFileSync('tar', ['-t', '-v', '--numeric-owner', '--quoting-style=c', '-f', archive, '-P'], {
    env: { ...process.env, LC_ALL: 'C' },
    encoding: 'latin1',
  })
    .split('\n')
    .filter((l) => l !== '');
}

/** Members checked in order; the first refusal, or undefined. */
function verdict(prefix: string, members: TarMember[]): string | undefined {
  const check = new MemberCheck(prefix);
  for (const m of members) {
    const why = check.add(m);
    if (why) return why;
  }
  return undefined;
}

const P = '../../_temp/itest-image';
const file = (name: string): TarMember => ({ type: '-', name });
const dir = (name: string): TarMember => ({ type: 'd', name });
const sym = (name: string, link: string): TarMember => ({ type: 'l', name, link });
const hard = (name: string, link: string): TarMember => ({ type: 'h', name, link });

describe('tar member check', () => {
  it("reads GNU tar's listing of awkward names and link targets byte for byte", async () => {
    const stage = join(base, 'names');
    const weird = 'we"ird -> name\nlink to é\\';
    await mkdir(join(stage, 'img', 'sub'), { recursive: true });
    await writeFile(join(stage, 'img', 'image.raw'), 'raw');
    await writeFile(join(stage, 'img', 'sub', weird), 'x');
    await symlink('image.raw', join(stage, 'img', 'image'));
    await symlink(weird, join(stage, 'img', 'sub', 'odd'));
    execFileSync('ln', [join(stage, 'img', 'image.raw'), join(stage, 'img', 'hard')]);
    const archive = join(base, 'names.tar');
    execFileSync('tar', ['--posix', '-cf', archive, '-C', stage, 'img']);
    const members = listing(archive).map((l) => parseListingLine(l));
    assert.ok(members.every((m) => m !== undefined));
    const utf8 = (s: string) => Buffer.from(s, 'latin1').toString('utf8');
    const got = Object.fromEntries(members.map((m) => [utf8(m!.name), [m!.type, m!.link && utf8(m!.link)]]));
    assert.deepEqual(got, {
      'img/': ['d', undefined],
      'img/image.raw': ['-', undefined],
      'img/image': ['l', 'image.raw'],
      'img/hard': ['h', 'img/image.raw'],
      'img/sub/': ['d', undefined],
      [`img/sub/${weird}`]: ['-', undefined],
      'img/sub/odd': ['l', weird],
    });
    assert.equal(verdict('img', members as TarMember[]), undefined);
  });

  it('rejects lines it cannot read rather than guessing', () => {
    assert.equal(parseListingLine('-rw-r--r-- 0/0 3 2026-01-01 00:00 no quotes'), undefined);
    assert.equal(
      parseListingLine('-rw-r--r-- 0/0 3 2026-01-01 00:00 "a" -> "b"'),
      undefined,
      'only a symlink has ->',
    );
    assert.equal(parseListingLine('lrwxrwxrwx 0/0 0 2026-01-01 00:00 "a" -> "b" trailing'), undefined);
    assert.equal(parseListingLine('-rw-r--r-- 0/0 3 2026-01-01 00:00 "a\\q"'), undefined, 'unknown escape');
  });

  it('accepts what a mkosi image directory holds', () => {
    assert.equal(
      verdict(P, [
        dir(`${P}/`),
        file(`${P}/image.raw`),
        sym(`${P}/image`, 'image.raw'),
        dir(`${P}/sub/`),
        sym(`${P}/sub/up`, '../image.raw'),
        sym(`${P}/sub/self`, '.'),
        sym(`${P}/sub/top`, '..'),
        hard(`${P}/copy`, `${P}/image.raw`),
        file(`./${P}//sub/./x`),
      ]),
      undefined,
    );
  });

  const refused: [string, TarMember[], RegExp][] = [
    ['an absolute name', [file('/etc/cron.d/x')], /"\/etc\/cron.d\/x" has an absolute name/],
    ['a name outside', [file('../../_temp/other/x')], /lies outside the image directory/],
    ['a parent directory of the image', [dir('../../_temp/')], /lies outside/],
    ["'..' after the prefix", [file(`${P}/../../../x`)], /has a '\.\.' component/],
    ["'..' inside the image", [file(`${P}/sub/../x`)], /has a '\.\.' component/],
    ['a symlink to an absolute path', [sym(`${P}/l`, '/etc')], /symbolic link to the absolute path "\/etc"/],
    ['a symlink climbing out', [sym(`${P}/sub/l`, '../../x')], /outside the image directory/],
    ["a symlink with '..' after a name", [sym(`${P}/l`, 'sub/../..')], /outside the image directory/],
    // sub/self -> . makes sub/self/.. the parent: a lexical check would say "inside".
    [
      'a symlink through a symlink',
      [sym(`${P}/self`, '.'), sym(`${P}/self/up`, '..')],
      /through the symbolic link "self"/,
    ],
    [
      'a file through a symlink',
      [sym(`${P}/l`, 'sub'), file(`${P}/l/x`)],
      /written through the symbolic link "l"/,
    ],
    [
      'a hard link outside',
      [hard(`${P}/h`, '/etc/shadow')],
      /hard link to "\/etc\/shadow", which has an absolute name/,
    ],
    [
      'a hard link to a symlink',
      [sym(`${P}/s`, 'x'), hard(`${P}/h`, `${P}/s`)],
      /not to a file restored before it/,
    ],
    ['a hard link to nothing before it', [hard(`${P}/h`, `${P}/later`), file(`${P}/later`)], /not to a file/],
    ['the image directory as a symlink', [sym(P, 'x')], /replaces the image directory itself/],
    ['a FIFO', [{ type: 'p', name: `${P}/fifo` }], /is a FIFO/],
    ['a device', [{ type: 'b', name: `${P}/sda` }], /is a block device/],
    ['an unknown type', [{ type: '?', name: `${P}/q` }], /unknown type/],
  ];
  for (const [what, members, why] of refused)
    it(`refuses ${what}`, () => assert.match(verdict(P, members) ?? 'accepted', why));

  it('names the member in the refusal with control characters escaped', () => {
    const why = verdict(P, [file(`/x\n::error::y\u001b`)]) ?? '';
    assert.ok(!why.includes('\n') && !why.includes('\u001b'), why);
    assert.match(why, /"\/x\\n::error::y\\u001b"/);
  });
});

describe('checkArchive (the real tar lists)', () => {
  it('passes a good archive, refuses a FIFO, an empty archive and one tar cannot read', async () => {
    const stage = join(base, 'check');
    await mkdir(join(stage, 'img'), { recursive: true });
    await writeFile(join(stage, 'img', 'image.raw'), 'raw');
    const good = join(base, 'good.tgz');
    execFileSync('tar', ['-czf', good, '-C', stage, 'img']);
    assert.equal(await checkArchive('tar', { archive: good, compression: ['-z'] }, 'img'), undefined);
    assert.match(
      (await checkArchive('tar', { archive: good, compression: ['-z'] }, 'other')) ?? '',
      /outside/,
    );
    execFileSync('mkfifo', [join(stage, 'img', 'fifo')]);
    const fifo = join(base, 'fifo.tgz');
    execFileSync('tar', ['-czf', fifo, '-C', stage, 'img']);
    assert.match((await checkArchive('tar', { archive: fifo, compression: ['-z'] }, 'img')) ?? '', /FIFO/);
    const empty = join(base, 'empty.tgz');
    execFileSync('tar', ['-czf', empty, '-T', '/dev/null']);
    assert.match(
      (await checkArchive('tar', { archive: empty, compression: ['-z'] }, 'img')) ?? '',
      /holds nothing/,
    );
    const junk = join(base, 'junk.tgz');
    await writeFile(junk, 'not an archive');
    assert.match(
      (await checkArchive('tar', { archive: junk, compression: ['-z'] }, 'img')) ?? '',
      /tar could not list the archive \(exit 2\)/,
    );
  });

  it("knows @actions/cache's tar calls and nothing else", () => {
    const zstd = ['--use-compress-program', 'unzstd'];
    assert.deepEqual(parseCacheTarArgv(['-xf', '/t/cache.tzst', '-P', '-C', '/ws', ...zstd]), {
      op: 'extract',
      archive: '/t/cache.tzst',
      root: '/ws',
      compression: zstd,
    });
    assert.deepEqual(parseCacheTarArgv(['-tf', '/t/cache.tgz', '-P', '-z']), { op: 'list' });
    const create = ['--posix', '-cf', 'cache.tzst', '--exclude', 'cache.tzst', '-P', '-C', '/ws'];
    assert.deepEqual(
      parseCacheTarArgv([...create, '--files-from', 'manifest.txt', '--use-compress-program', 'zstdmt']),
      {
        op: 'create',
      },
    );
    for (const argv of [
      ['-xf', '/t/cache.tzst', '-P', '-C', '/ws', ...zstd, '--to-command=sh'],
      ['-xf', '/t/cache.tzst', '-C', '/ws', '-P', '-z'],
      ['-x', '-f', '/t/cache.tzst', '-P', '-C', '/ws', '-z'],
      ['--extract', '--file=/t/cache.tgz'],
      ['--version'],
    ])
      assert.equal(parseCacheTarArgv(argv), undefined, argv.join(' '));
  });
});

/** Runs `argv` from this process (as @actions/exec does: PATH lookup, no shell); its exit code. */
function run(argv: string[], cwd?: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

describe('withTarGuard', () => {
  it('refuses odd calls from this process, passes tar run by other processes, then puts PATH back', async (t) => {
    const path = process.env.PATH;
    // A temporary directory of this test's own: other test files running at the same time make guards too.
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = await mkdtemp(join(base, 'tmp-'));
    t.after(() => {
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
    });
    const guards = async () => (await readdir(tmpdir())).filter((n) => n.startsWith('itest-tar-guard-'));
    const earlier = await guards();
    const { value, refused } = await withTarGuard(join(base, 'guarded'), async () => {
      assert.notEqual(process.env.PATH, path);
      const direct = await run(['tar', '--version']);
      // A grandchild (mkosi's tar, say) is not @actions/cache's: it passes untouched.
      const other = await run([
        process.execPath,
        '-e',
        "require('child_process').execFileSync('tar', ['--version'], { stdio: 'ignore' })",
      ]);
      return { direct, other };
    });
    assert.deepEqual(value, { direct: 2, other: 0 });
    assert.match(refused ?? '', /unexpected tar arguments \["--version"\]/);
    assert.equal(process.env.PATH, path);
    assert.deepEqual(await guards(), earlier, 'the private directory is gone');
  });

  it('refuses every extraction once the restore was given up', async () => {
    const stage = join(base, 'late');
    await mkdir(join(stage, 'img'), { recursive: true });
    await writeFile(join(stage, 'img', 'image.raw'), 'raw');
    const archive = join(base, 'late.tgz');
    execFileSync('tar', ['-czf', archive, '-C', stage, 'img']);
    const target = join(base, 'late-ws');
    await mkdir(target);
    const given = new AbortController();
    const extract = () => run(['tar', '-xf', archive, '-P', '-C', target, '-z']);
    const ok = await withTarGuard(join(target, 'img'), extract);
    assert.deepEqual(ok, { value: 0, refused: undefined });
    assert.equal(await readFile(join(target, 'img', 'image.raw'), 'utf8'), 'raw');
    await rm(join(target, 'img'), { recursive: true });
    given.abort();
    const late = await withTarGuard(join(target, 'img'), extract, { signal: given.signal });
    assert.deepEqual(late, { value: 2, refused: 'the restore was given up' });
    assert.equal(existsSync(join(target, 'img')), false);
  });
  it("an abandoned restore's tar is killed with the wrapper that runs it", async () => {
    const stage = join(base, 'slow');
    await mkdir(join(stage, 'img'), { recursive: true });
    await writeFile(join(stage, 'img', 'image.raw'), randomBytes(300_000));
    const bytes = execFileSync('tar', ['-cz', '-C', stage, 'img']);
    // The archive is a FIFO: whole for the listing, then half for the extraction, which waits for more.
    const target = join(base, 'slow-ws');
    await mkdir(target);
    const fifo = join(base, 'cache.tgz');
    execFileSync('mkfifo', [fifo]);
    let wrapper: number | undefined;
    const guarded = withTarGuard(join(target, 'img'), () => {
      const child = spawn('tar', ['-xf', fifo, '-P', '-C', target, '-z'], { stdio: 'ignore' });
      wrapper = child.pid;
      return new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, sig) => r(sig)));
    });
    const feed = async (data: Buffer, close: boolean) => {
      const fd = await open(fifo, 'w');
      // The listing may stop reading at the archive's end blocks, before the last bytes.
      await fd.write(data).catch((e: NodeJS.ErrnoException) => assert.equal(e.code, 'EPIPE'));
      if (close) await fd.close();
      return fd;
    };
    await feed(bytes, true);
    // Once the listing passed, the real tar starts under the wrapper (and waits for a writer).
    let tar: number | undefined;
    for (let i = 0; i < 200 && tar === undefined; i++) {
      tar = (await listProcesses()).find((p) => p.ppid === wrapper && /tar$/.test(p.argv[0] ?? ''))?.pid;
      if (tar === undefined) await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(wrapper && tar, 'the real tar runs under the wrapper');
    const held = await feed(bytes.subarray(0, bytes.length >> 1), false);
    assert.deepEqual((await killCacheTar()).sort(), [wrapper, tar].sort());
    assert.deepEqual(await guarded, { value: 'SIGKILL', refused: undefined });
    // Killed, then reaped by init: its /proc entry goes.
    for (let i = 0; i < 100 && existsSync(`/proc/${tar}`); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(existsSync(`/proc/${tar}`), false, 'the real tar is gone too');
    await held.close();
  });
});

// Azurite's published development account (not a secret), to put planted archives in place.
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

describe('restoring a planted cache entry (real @actions/cache, local services)', () => {
  const services = new ActionsServices();
  const saved: NodeJS.ProcessEnv = {};
  let ws: string;
  let outside: string;
  // As @actions/cache decides: zstd when there is one, else gzip.
  const zstd = spawnSync('zstd', ['--quiet', '--version']).status === 0;
  const compress = zstd ? ['--use-compress-program', 'zstdmt'] : ['-z'];

  before(async () => {
    await services.start();
    ws = join(base, 'ws');
    outside = join(base, 'outside');
    await mkdir(ws);
    await mkdir(outside);
    const env = { ...services.env(), GITHUB_WORKSPACE: ws, RUNNER_TEMP: base };
    for (const [k, v] of Object.entries(env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  after(async () => {
    await services.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  const container = () =>
    new BlobServiceClient(
      `http://127.0.0.1:${services.blobPort}/${ACCOUNT}`,
      new StorageSharedKeyCredential(ACCOUNT, KEY),
    ).getContainerClient('cache');
  async function blobs(): Promise<Set<string>> {
    const names = new Set<string>();
    for await (const b of container().listBlobsFlat()) names.add(b.name);
    return names;
  }

  /** Saves a real entry for `imageDir` under `key`, then replaces its archive in storage by `archive`. */
  async function plant(key: string, imageDir: string, archive: string): Promise<void> {
    const earlier = await blobs();
    await mkdir(imageDir, { recursive: true });
    await writeFile(join(imageDir, 'placeholder'), 'x');
    await new GitHubImageCache(imageDir, { allowed: true, why: 'push' }, (w) => assert.fail(w)).save(
      key,
      imageDir,
    );
    const added = [...(await blobs())].filter((n) => !earlier.has(n));
    assert.equal(added.length, 1, 'one new blob');
    await container()
      .getBlockBlobClient(added[0]!)
      .uploadData(await readFile(archive));
    await rm(imageDir, { recursive: true });
  }

  /**
   * An archive as an attacker would write it: `stage` packed with its top names rewritten by `rename`
   * ([from, to] on member names, not on symlink targets); names keep '/' and '..' (-P).
   */
  async function craft(name: string, tree: (stage: string) => Promise<void>, rename: [string, string][]) {
    const stage = join(base, `stage-${name}`);
    await mkdir(stage);
    await tree(stage);
    const archive = join(base, `${name}.tar`);
    const transforms = rename.flatMap(([from, to]) => ['--transform', `s|^${from}|${to}|S`]);
    execFileSync('tar', [
      '--posix',
      '-cf',
      archive,
      '-P',
      ...transforms,
      ...compress,
      '-C',
      stage,
      ...(await readdir(stage)),
    ]);
    return archive;
  }

  const image = async (stage: string) => {
    await mkdir(join(stage, 'img'));
    await writeFile(join(stage, 'img', 'image.raw'), 'raw');
  };

  const cases: [string, (img: string) => Promise<string>, RegExp][] = [
    [
      'an absolute member',
      (img) =>
        craft('abs', async (s) => (await image(s), writeFile(join(s, 'abs'), 'pwned')), [
          ['img', relative(ws, img)],
          ['abs$', join(outside, 'pwned-abs')],
        ]),
      /member ".*\/outside\/pwned-abs" has an absolute name/,
    ],
    [
      'a ../ member',
      (img) =>
        craft('up', async (s) => (await image(s), writeFile(join(s, 'up'), 'pwned')), [
          ['img', relative(ws, img)],
          ['up$', `${relative(ws, outside)}/pwned-up`],
        ]),
      /member "\.\.\/outside\/pwned-up" lies outside the image directory/,
    ],
    [
      "a ../ member behind the image directory's name",
      (img) =>
        craft('behind', async (s) => (await image(s), writeFile(join(s, 'behind'), 'pwned')), [
          ['img', relative(ws, img)],
          ['behind$', `${relative(ws, img)}/../outside/pwned-behind`],
        ]),
      /member ".*\/\.\.\/outside\/pwned-behind" has a '\.\.' component/,
    ],
    [
      'a symlink to outside and a file through it',
      (img) =>
        craft(
          'link',
          async (s) => {
            await image(s);
            await symlink(outside, join(s, 'img', 'escape'));
            await mkdir(join(s, 'thru'));
            await writeFile(join(s, 'thru', 'pwned-link'), 'pwned');
          },
          [
            ['thru', 'img/escape'],
            ['img', relative(ws, img)],
          ],
        ),
      /member ".*\/escape" is a symbolic link to the absolute path ".*\/outside"/,
    ],
    [
      'a relative symlink climbing out and a file through it',
      (img) =>
        craft(
          'rel-link',
          async (s) => {
            await image(s);
            await symlink('../outside', join(s, 'img', 'escape'));
            await mkdir(join(s, 'thru'));
            await writeFile(join(s, 'thru', 'pwned-rel-link'), 'pwned');
          },
          [
            ['thru', 'img/escape'],
            ['img', relative(ws, img)],
          ],
        ),
      /member ".*\/escape" is a symbolic link to "\.\.\/outside", outside the image directory/,
    ],
  ];

  cases.forEach(([what, archive, why], i) => {
    it(`${what}: a miss with a warning naming it, nothing written outside`, async () => {
      const img = join(base, `img-${i}`);
      const key = `itest-image-planted-${i}`;
      await plant(key, img, await archive(img));
      const warnings: string[] = [];
      const r = await new GitHubImageCache(img, { allowed: false, why: 'test' }, (w) =>
        warnings.push(w),
      ).restore(key);
      assert.deepEqual(await readdir(outside), [], 'nothing outside the image directory');
      assert.equal(r.hit, false, r.detail);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(
        warnings[0]!,
        new RegExp(`entry ${key} was not restored, building instead: ${why.source}`),
      );
      assert.deepEqual(await readdir(base).then((n) => n.filter((x) => x.startsWith('pwned'))), []);
      assert.equal(existsSync(img), false, 'nothing of it in the image directory either');
    });
  });

  it('a good archive (mkosi-like, with internal symlinks) restores whole', async () => {
    const img = join(base, 'img-good');
    await mkdir(join(img, 'sub'), { recursive: true });
    const raw = Buffer.alloc(200_000, 7);
    await writeFile(join(img, 'image.raw'), raw);
    await symlink('image.raw', join(img, 'image'));
    await symlink('../image.raw', join(img, 'sub', 'up'));
    await writeFile(join(img, 'sub', 'conf'), 'conf');
    const warnings: string[] = [];
    const cache = new GitHubImageCache(img, { allowed: true, why: 'push' }, (w) => warnings.push(w));
    await cache.save('itest-image-good', img);
    await rm(img, { recursive: true });
    // Left from an earlier image: the guard empties the directory before tar writes into it.
    await mkdir(img);
    await symlink(outside, join(img, 'sub'));
    const path = process.env.PATH;
    const r = await cache.restore('itest-image-good');
    assert.equal(r.hit, true, r.detail);
    assert.deepEqual(warnings, []);
    assert.deepEqual(await readFile(join(img, 'image.raw')), raw);
    assert.equal(await readlink(join(img, 'image')), 'image.raw');
    assert.equal(await readlink(join(img, 'sub', 'up')), '../image.raw');
    assert.deepEqual(await readFile(join(img, 'image')), raw);
    assert.equal(await readFile(join(img, 'sub', 'conf'), 'utf8'), 'conf');
    assert.deepEqual((await readdir(img)).sort(), ['image', 'image.raw', 'sub']);
    assert.deepEqual(await readdir(outside), []);
    assert.equal(process.env.PATH, path, 'PATH is as it was');
  });
});

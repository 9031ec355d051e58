/**
 * Keeps @actions/cache's restore from unpacking an archive that writes outside the image directory.
 * The library runs GNU tar with `-P` (absolute and '..' names kept) and `-C <workspace>`, and anything
 * holding the job's cache token can write an entry, so the archive is not trusted.
 *
 * The library finds tar with io.which('tar') (process.env.PATH, read on every call, nothing cached) and
 * offers no download without extraction. So for the duration of one restore call a private directory
 * (mode 0700) with a `tar` wrapper goes first on PATH. The wrapper, a few lines of node written from a
 * string here (nothing to bundle), asks this process over a Unix socket in that directory; this process
 * lists the archive with the real tar and the same decompression, checks every member (tar-members.ts),
 * empties the image directory, and only then lets the wrapper run the real tar with the original
 * arguments. A refusal makes tar "fail": the library reports a miss, the caller warns with the reason.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, relative, resolve } from 'node:path';
import { MemberCheck, parseListingLine, showName } from './tar-members.ts';

const DIR_PREFIX = 'itest-tar-guard-';

/** Whether a process's argv is a guard wrapper (node running <private dir>/tar): its tar is a grandchild. */
export function isTarGuardWrapper(argv: string[]): boolean {
  return new RegExp(`/${DIR_PREFIX}[^/]+/tar$`).test(argv[1] ?? '');
}

/** Guard directories now on PATH: never taken for the real tar. */
const active = new Set<string>();

/** The first executable `tar` on PATH, as io.which would find it, skipping guard wrappers. */
export async function findTar(path = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of path.split(delimiter)) {
    if (!dir || active.has(dir)) continue;
    const file = join(dir, 'tar');
    try {
      if ((await stat(file)).isFile()) {
        await access(file, constants.X_OK);
        return file;
      }
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The wrapper: asks the guard, then runs the real tar as asked or exits 2 with the reason. */
function wrapperSource(node: string, socket: string, tar: string): string {
  // No import, no require: the same text runs as CommonJS or as an ES module.
  return `#!${node}
'use strict';
{
  const net = process.getBuiltinModule('node:net');
  const { spawn } = process.getBuiltinModule('node:child_process');
  const tar = ${JSON.stringify(tar)};
  const args = process.argv.slice(2);
  const refuse = (why) => {
    process.stderr.write('itest tar guard: ' + why + '\\n');
    process.exit(2);
  };
  let reply = '';
  const conn = net.connect(${JSON.stringify(socket)});
  conn.setEncoding('utf8');
  conn.on('data', (d) => (reply += d));
  conn.on('error', (e) => refuse('cannot ask the guard: ' + e.message));
  conn.on('end', () => {
    let answer = {};
    try {
      answer = JSON.parse(reply);
    } catch {
      refuse('the guard did not answer');
    }
    if (answer.ok !== true) refuse(String(answer.why));
    const child = spawn(tar, args, { stdio: 'inherit' });
    for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => child.kill(s));
    child.on('error', (e) => refuse('cannot run ' + tar + ': ' + e.message));
    child.on('exit', (code, signal) => {
      if (!signal) process.exit(code ?? 1);
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    });
  });
  conn.end(JSON.stringify({ argv: args, ppid: process.ppid, cwd: process.cwd() }));
}
`;
}

const READ_COMPRESSION = [['-z'], ['--use-compress-program', 'unzstd']];
const WRITE_COMPRESSION = [['-z'], ['--use-compress-program', 'zstdmt']];
const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export type CacheTarCall =
  { op: 'extract'; archive: string; root: string; compression: string[] } | { op: 'list' | 'create' };

/**
 * The tar invocations of @actions/cache 6 on Linux (internal/tar.js, split by @actions/exec):
 *   extract: -xf <archive> -P -C <root> <decompression>
 *   list:    -tf <archive> -P <decompression>                       (debug logging of a restore)
 *   create:  --posix -cf <f> --exclude <f> -P -C <root> --files-from manifest.txt <compression>
 * Anything else is undefined: refused, since it cannot be judged (an update of the library shows here).
 */
export function parseCacheTarArgv(argv: string[]): CacheTarCall | undefined {
  const [op, archive] = argv;
  if (op === '-xf' && argv[2] === '-P' && argv[3] === '-C' && argv[4] !== undefined) {
    const compression = argv.slice(5);
    if (archive && READ_COMPRESSION.some((c) => same(c, compression)))
      return { op: 'extract', archive, root: argv[4], compression };
  }
  if (op === '-tf' && archive && argv[2] === '-P' && READ_COMPRESSION.some((c) => same(c, argv.slice(3))))
    return { op: 'list' };
  const [, , f, , , , , root] = argv;
  if (
    f &&
    root &&
    same(argv.slice(0, 10), [
      '--posix',
      '-cf',
      f,
      '--exclude',
      f,
      '-P',
      '-C',
      root,
      '--files-from',
      'manifest.txt',
    ]) &&
    WRITE_COMPRESSION.some((c) => same(c, argv.slice(10)))
  )
    return { op: 'create' };
  return undefined;
}

/** Control characters out, at most 300 chars: tar's message may quote member names. */
function clean(text: string): string {
  const t = text.replace(/[\p{Cc}\u2028\u2029]/gu, ' ').trim();
  return t.length > 300 ? `${t.slice(0, 300)}...` : t;
}

/**
 * Lists `archive` with the real tar and checks each member as it comes; the listing is stopped at the
 * first bad one. Undefined when the whole archive may be unpacked into the directory that the archive
 * names `prefix`, else why not.
 */
export async function checkArchive(
  tar: string,
  call: { archive: string; compression: string[] },
  prefix: string,
  cwd?: string,
  rules: ConstructorParameters<typeof MemberCheck>[1] = {},
): Promise<string | undefined> {
  const check = new MemberCheck(Buffer.from(prefix, 'utf8').toString('latin1'), rules);
  const args = [
    '-t',
    '-v',
    '--numeric-owner',
    '--quoting-style=c',
    '-f',
    call.archive,
    '-P',
    ...call.compression,
  ];
  return new Promise((resolvePromise) => {
    let refused: string | undefined;
    let pending = '';
    let stderr = '';
    const child = spawn(tar, args, {
      cwd,
      // C locale: every non-ASCII byte of a name is an octal escape, the dates carry no quotes.
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const line = (text: string) => {
      if (refused !== undefined) return;
      const member = parseListingLine(text);
      refused = member ? check.add(member) : `tar listed a line the guard cannot read: ${showName(text)}`;
      if (refused !== undefined) child.kill('SIGKILL');
    };
    child.stdout.setEncoding('latin1').on('data', (d: string) => {
      const lines = (pending + d).split('\n');
      pending = lines.pop() ?? '';
      lines.forEach(line);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
    child.on('error', (e) => {
      refused ??= `cannot run ${tar} to list the archive: ${e.message}`;
    });
    child.on('close', (code, signal) => {
      if (pending !== '') line(pending);
      if (refused === undefined && (code !== 0 || signal)) {
        const last = clean(stderr.trim().split('\n').pop() ?? '');
        refused = `tar could not list the archive (${signal ?? `exit ${code}`})${last ? `: ${last}` : ''}`;
      }
      if (refused === undefined && check.count === 0) refused = 'the archive holds nothing';
      resolvePromise(refused);
    });
  });
}

export interface TarGuardOptions {
  /** Once aborted (the restore was given up), every extraction is refused. */
  signal?: AbortSignal;
  /**
   * Once aborted, PATH is put back before `fn` settles: for a call given up before it could download
   * anything (its new requests fail at once), so it can never reach tar and its lingering retries must
   * not catch this process's other tar calls.
   */
  release?: AbortSignal;
  /** Where the private directory goes; default os.tmpdir(). */
  tempDir?: string;
}

export interface Guarded<T> {
  value: T;
  /** Why an extraction was refused, when one was. */
  refused?: string;
}

/** The interpreter line must be one absolute path without blanks that the kernel reads whole. */
function shebangSafe(path: string): boolean {
  return /^\/\S+$/.test(path) && path.length < 120;
}

/**
 * Runs `fn` (a restoreCache call) with tar guarded: extractions from this process must unpack only into
 * `dir` (which is emptied first); the library's listings and archive creation pass; tar run by other
 * processes (children that inherited PATH) passes untouched. PATH is put back when `fn` settles, not
 * before (an abandoned call that unpacks late must still meet the guard), unless `release` says sooner.
 */
export async function withTarGuard<T>(
  dir: string,
  fn: () => Promise<T>,
  options: TarGuardOptions = {},
): Promise<Guarded<T>> {
  const tar = await findTar();
  if (!tar) throw new Error('no tar on PATH to unpack the cache with');
  if (!shebangSafe(process.execPath))
    throw new Error(
      `cannot guard tar: node's path ${JSON.stringify(process.execPath)} cannot start a script`,
    );
  const image = resolve(dir);
  const priv = await mkdtemp(join(options.tempDir ?? tmpdir(), DIR_PREFIX));
  let refused: string | undefined;
  let server: Server | undefined;
  const teardown = async () => {
    server?.close();
    await rm(priv, { recursive: true, force: true }).catch(() => {});
  };
  try {
    const socket = join(priv, 'sock');
    if (Buffer.byteLength(socket) > 100)
      throw new Error(`cannot guard tar: ${socket} is too long for a socket`);
    // flag wx: a new file in our new directory, never through anything already there.
    await writeFile(join(priv, 'tar'), wrapperSource(process.execPath, socket, tar), {
      mode: 0o700,
      flag: 'wx',
    });

    const decide = async (body: string): Promise<{ ok: true } | { ok: false; why: string }> => {
      const refuse = (why: string) => {
        refused ??= why;
        return { ok: false as const, why };
      };
      let req: { argv?: unknown; ppid?: unknown; cwd?: unknown };
      try {
        req = JSON.parse(body) as typeof req;
      } catch {
        return refuse('the tar wrapper sent no request');
      }
      if (
        !Array.isArray(req.argv) ||
        !req.argv.every((a) => typeof a === 'string') ||
        typeof req.cwd !== 'string'
      )
        return refuse('the tar wrapper sent no request');
      if (req.ppid !== process.pid) return { ok: true };
      const call = parseCacheTarArgv(req.argv as string[]);
      if (!call) return refuse(`unexpected tar arguments ${clean(JSON.stringify(req.argv))}`);
      if (call.op !== 'extract') return { ok: true };
      if (options.signal?.aborted) return refuse('the restore was given up');
      const prefix = relative(resolve(req.cwd, call.root), image);
      const why = await checkArchive(tar, call, prefix, req.cwd);
      if (why !== undefined) return refuse(why);
      if (options.signal?.aborted) return refuse('the restore was given up');
      // Nothing of an earlier image (its symlinks included) may be there for the archive to write through.
      await rm(image, { recursive: true, force: true });
      return { ok: true };
    };

    // Half-open: the wrapper ends its request, then waits for the answer on the same connection.
    server = createServer({ allowHalfOpen: true }, (conn) => {
      let body = '';
      conn.setEncoding('utf8');
      conn.on('error', () => {});
      conn.on('data', (d: string) => {
        body += d;
        if (body.length > 1 << 20) conn.destroy();
      });
      conn.on('end', () => {
        decide(body)
          .catch((e: Error) => ({ ok: false, why: `the guard failed: ${e.message}` }))
          .then(
            (answer) => conn.end(JSON.stringify(answer)),
            () => conn.destroy(),
          );
      });
    });
    await new Promise<void>((ok, fail) => {
      server!.once('error', fail);
      server!.listen(socket, () => ok());
    });
    // A call that never settles must not keep the process alive.
    server.unref();

    const before = process.env.PATH;
    const ours = before ? `${priv}${delimiter}${before}` : priv;
    const unguard = () => {
      if (!active.delete(priv)) return;
      if (process.env.PATH !== ours)
        process.env.PATH = (process.env.PATH ?? '')
          .split(delimiter)
          .filter((p) => p !== priv)
          .join(delimiter);
      else if (before === undefined) delete process.env.PATH;
      else process.env.PATH = before;
    };
    active.add(priv);
    process.env.PATH = ours;
    // Released, nothing can reach the wrapper any more: it all goes now (the call may never settle).
    const release = () => {
      unguard();
      void teardown();
    };
    options.release?.addEventListener('abort', release, { once: true });
    try {
      const value = await fn();
      return { value, refused };
    } finally {
      options.release?.removeEventListener('abort', release);
      unguard();
    }
  } finally {
    await teardown();
  }
}

/**
 * Installs a named mkosi release on the runner with @actions/tool-cache: the GitHub source archive of the
 * tag, run from its own tree through the repository's `bin/mkosi` launcher (what the mkosi project's own
 * setup action links into /usr/bin). mkosi is pure Python, so nothing is built; the launcher finds its
 * tree through `readlink -f` and puts it on PYTHONPATH itself, so the result is a plain argv prefix that
 * needs no environment (RunConfig.mkosi).
 */
import * as tc from '@actions/tool-cache';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand, type CommandResult } from '../../util/process.ts';
import { ExitCode, UserError } from '../../util/errors.ts';

export const MKOSI_RELEASE_INPUT = 'mkosi-release';
export const DEFAULT_MKOSI_ARCHIVE_BASE = 'https://github.com/systemd/mkosi/archive/refs/tags';

/** The oldest Python the released bin/mkosi launchers accept. */
const MIN_PYTHON: [number, number] = [3, 9];
const RELEASE_RE = /^v?((?:0|[1-9]\d{0,3})(?:\.(?:0|[1-9]\d{0,3})){0,2})$/;

export interface MkosiRelease {
  /** argv prefix that runs this mkosi (RunConfig.mkosi); no shell, no environment needed. */
  command: string[];
  /** As mkosi prints it, e.g. `25.3`. */
  version: string;
  /** The release's source tree in the tool cache. */
  dir: string;
  /** true when the tool cache already had it (nothing downloaded). */
  cached: boolean;
}

export interface InstallMkosiOptions {
  /** Where `v<version>.tar.gz` is fetched from; default GitHub's archive of systemd/mkosi tags. */
  baseUrl?: string;
  /** Environment for python3 and `mkosi --version` (PATH, MKOSI_INTERPRETER); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** One line per step worth telling the user ("cached", "downloaded ..."). */
  log?: (line: string) => void;
}

/** `25.3`, `v25.3`, `26` -> `25.3`, `25.3`, `26`; throws a UserError naming the input otherwise. */
export function parseMkosiRelease(release: string): string {
  const m = RELEASE_RE.exec(release.trim());
  if (!m?.[1]) {
    throw new UserError(
      `${MKOSI_RELEASE_INPUT}: ${JSON.stringify(release)} is not a mkosi release name. ` +
        `Use the release number as tagged in https://github.com/systemd/mkosi/tags, ` +
        `e.g. 25.3, v25.3 or 26 (digits and dots, an optional leading v)`,
    );
  }
  return m[1];
}

/** tool-cache only finds directories named by full semver versions: 25.3 -> 25.3.0, 26 -> 26.0.0. */
function semverOf(version: string): string {
  const parts = version.split('.');
  while (parts.length < 3) parts.push('0');
  return parts.join('.');
}

function firstLines(s: string, n = 3): string {
  return s.trim().split('\n').filter(Boolean).slice(0, n).join(' | ');
}

async function checkPython(env: NodeJS.ProcessEnv): Promise<void> {
  const python = env.MKOSI_INTERPRETER || 'python3';
  const r = await runCommand([python, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
    env,
    timeoutMs: 30_000,
  });
  const fix =
    'Fix: add a step that provides it before this one (e.g. `- uses: actions/setup-python@v5` with ' +
    '`python-version: "3.x"`), or install python3 on the runner';
  if (r.spawnError) {
    throw new UserError(
      `${MKOSI_RELEASE_INPUT}: mkosi is a Python program and needs ${python} (${MIN_PYTHON.join('.')} or newer) on the runner, ` +
        `but ${python} ${r.spawnError.code === 'ENOENT' ? 'was not found on PATH' : `cannot be run (${r.spawnError.message})`}. ${fix}`,
      ExitCode.hostNotReady,
    );
  }
  const v = /^(\d+)\.(\d+)/.exec(r.stdout.trim());
  if (r.code !== 0 || !v) {
    throw new UserError(
      `${MKOSI_RELEASE_INPUT}: \`${python}\` does not work (exit ${r.code ?? r.signal}): ${firstLines(r.stderr || r.stdout) || 'no output'}. ${fix}`,
      ExitCode.hostNotReady,
    );
  }
  const [major, minor] = [Number(v[1]), Number(v[2])];
  if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
    throw new UserError(
      `${MKOSI_RELEASE_INPUT}: mkosi needs Python ${MIN_PYTHON.join('.')} or newer; ${python} is ${major}.${minor}. ${fix}`,
      ExitCode.hostNotReady,
    );
  }
}

/** The one top-level directory of a GitHub source archive (`mkosi-25.3/`). */
async function archiveRoot(extracted: string, url: string): Promise<string> {
  const entries = await readdir(extracted, { withFileTypes: true });
  const dirs = entries.filter((e) => e.isDirectory());
  if (dirs.length !== 1 || entries.length !== 1 || !dirs[0]) {
    throw new UserError(
      `${MKOSI_RELEASE_INPUT}: ${url} is not shaped like a GitHub source archive (expected one top directory, found: ${entries.map((e) => e.name).join(', ') || 'nothing'})`,
    );
  }
  return join(extracted, dirs[0].name);
}

async function removeFromToolCache(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await rm(`${dir}.complete`, { force: true });
}

function describeRun(argv: string[], r: CommandResult): string {
  if (r.spawnError) return `\`${argv.join(' ')}\` could not be started: ${r.spawnError.message}`;
  const out = firstLines(`${r.stdout}\n${r.stderr}`, 4) || 'nothing';
  return `\`${argv.join(' ')}\` exited ${r.code ?? `on ${r.signal}`} and printed: ${out}`;
}

/**
 * Makes mkosi `release` runnable: from the runner's tool cache when it is there, else downloaded from
 * `<baseUrl>/v<version>.tar.gz`, extracted and cached. Checks python3 first and `<command> --version`
 * last; every failure is a UserError that says what to do.
 */
export async function installMkosiRelease(
  release: string,
  opts: InstallMkosiOptions = {},
): Promise<MkosiRelease> {
  const version = parseMkosiRelease(release);
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => {});
  await checkPython(env);

  const toolVersion = semverOf(version);
  let dir = tc.find('mkosi', toolVersion);
  const cached = dir !== '';
  if (cached) {
    log(`mkosi ${version}: found in the runner's tool cache (${dir}), cached; nothing downloaded`);
  } else {
    const base = (opts.baseUrl ?? DEFAULT_MKOSI_ARCHIVE_BASE).replace(/\/+$/, '');
    const url = `${base}/v${version}.tar.gz`;
    log(`mkosi ${version}: not in the runner's tool cache; downloading ${url}`);
    let archive: string;
    try {
      archive = await tc.downloadTool(url);
    } catch (e) {
      const status = e instanceof tc.HTTPError ? e.httpStatusCode : undefined;
      throw new UserError(
        status === 404
          ? `${MKOSI_RELEASE_INPUT}: mkosi release ${version} does not exist: ${url} answered HTTP 404. ` +
              `Fix: name a release listed at https://github.com/systemd/mkosi/tags (e.g. 25.3)`
          : `${MKOSI_RELEASE_INPUT}: could not download mkosi release ${version} from ${url}: ` +
              `${status ? `HTTP ${status}` : (e as Error).message}`,
        ExitCode.hostNotReady,
      );
    }
    let extracted: string | undefined;
    try {
      try {
        extracted = await tc.extractTar(archive);
      } catch (e) {
        throw new UserError(
          `${MKOSI_RELEASE_INPUT}: could not unpack ${url} (is it a .tar.gz?): ${(e as Error).message}`,
          ExitCode.hostNotReady,
        );
      }
      const root = await archiveRoot(extracted, url);
      const launcher = join(root, 'bin', 'mkosi');
      if (!(await stat(launcher).catch(() => undefined))?.isFile()) {
        throw new UserError(
          `${MKOSI_RELEASE_INPUT}: the archive of mkosi ${version} (${url}) has no bin/mkosi ` +
            `launcher (the mkosi repository's own entry point), so it cannot be run from its source tree`,
          ExitCode.hostNotReady,
        );
      }
      dir = await tc.cacheDir(root, 'mkosi', toolVersion);
    } finally {
      await rm(archive, { force: true });
      if (extracted) await rm(extracted, { recursive: true, force: true });
    }
    log(`mkosi ${version}: installed in the runner's tool cache (${dir})`);
  }

  const command = [join(dir, 'bin', 'mkosi')];
  const r = await runCommand([...command, '--version'], { env, timeoutMs: 60_000 });
  const printed = /^mkosi\s+(\S+)/m.exec(r.stdout)?.[1];
  if (r.spawnError || r.code !== 0 || printed !== version) {
    // A tree that does not run is of no use to the next job either.
    await removeFromToolCache(dir);
    const ran = describeRun([...command, '--version'], r);
    const source = cached ? 'from the tool cache' : 'just downloaded';
    throw new UserError(
      !r.spawnError && r.code === 0 && printed
        ? `${MKOSI_RELEASE_INPUT}: the mkosi ${version} ${source} says it is mkosi ${printed}, not ${version}: ${ran}. ` +
            `It was removed from the tool cache`
        : `${MKOSI_RELEASE_INPUT}: the mkosi ${version} ${source} does not run: ${ran}. It was removed from the tool cache`,
      ExitCode.hostNotReady,
    );
  }
  log(`mkosi ${version}: ${command.join(' ')} --version printed "mkosi ${printed}"`);
  return { command, version, dir, cached };
}

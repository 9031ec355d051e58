/**
 * Can this mkosi run here? `mkosi --version` only proves that mkosi's own modules import: the Python
 * modules its helper scripts import (pefile, run in a separate interpreter) and the tools its verbs exec
 * fail later, mid-run, with an error that only the console log shows. This module finds the interpreter
 * mkosi really runs under and what it can import (probeMkosiRuntime, runs processes), and decides what is
 * missing for a given mkosi version and how to install it (mkosiRuntimeProblems, pure).
 */
import { constants } from 'node:fs';
import { access, mkdtemp, open, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../util/process.ts';
import { parseMkosiMajor } from '../mkosi/dialect.ts';

/** What a Python interpreter said about itself. */
export interface PythonFacts {
  executable: string;
  version: string;
  /** Module name -> null when it imports, else the exception's line (`ModuleNotFoundError: ...`). */
  modules: Record<string, string | null>;
}

export interface MkosiRuntime {
  /** The interpreter mkosi's own process runs under; undefined when it could not be told (see `error`). */
  interpreter?: PythonFacts & {
    /**
     * measured: reported from inside mkosi's process; launcher: the Python its launcher script runs
     * (mkosi's bin/mkosi: MKOSI_INTERPRETER or python3; else its `exec <python> -m mkosi` line).
     */
    how: 'measured' | 'launcher';
  };
  /** The interpreter mkosi (25+) runs its helper scripts with; undefined when none was found. */
  helper?: PythonFacts;
  /** Where helper candidates were looked for when there was none (for the message). */
  helperSearched?: string[];
  /** Tool name -> path on PATH, or null when absent. */
  tools: Record<string, string | null>;
  /** The config sets ToolsTree= (or has mkosi.tools/): helpers and tools come from that tree instead. */
  toolsTree?: boolean;
  /** Why the interpreter is unknown. */
  error?: string;
  /** What the probe cost, in milliseconds. */
  ms: number;
}

interface ModuleNeed {
  module: string;
  /** Debian and Ubuntu package that provides it. */
  apt: string;
  /** The first mkosi major version that needs it. */
  since: number;
  why: string;
}

interface ToolNeed {
  tool: string;
  apt: string;
  /** Needed by mkosi majors [since, until). */
  since: number;
  until?: number;
  why: string;
}

/**
 * mkosi 26 and later identify the kernel with a pefile script before every `vm` (bootloader.py
 * KernelType.identify, mkosi commit d1b84f5f); 24 and 25 asked `bootctl kernel-identify` and need pefile
 * only to build UKIs.
 */
const MODULE_NEEDS: readonly ModuleNeed[] = [
  { module: 'pefile', apt: 'python3-pefile', since: 26, why: 'its vm verb reads the kernel image with it' },
];

/** mkosi 24 runs every command of every verb in bubblewrap (check_tools: "bwrap"); 25 has its own sandbox. */
const TOOL_NEEDS: readonly ToolNeed[] = [
  { tool: 'bwrap', apt: 'bubblewrap', since: 24, until: 25, why: 'it runs every command in bubblewrap' },
];

export const PROBED_MODULES = [...new Set(MODULE_NEEDS.map((n) => n.module))];
export const PROBED_TOOLS = [...new Set(TOOL_NEEDS.map((n) => n.tool))];

const MARKER = 'ITEST-MKOSI-PROBE ';

/**
 * The Python side. As `-c` script it reports at once; as sitecustomize.py (imported by every Python that
 * has it on PYTHONPATH, before any of its own code) only in the interpreter that is about to run mkosi,
 * and then it exits so mkosi itself never runs.
 */
export const PYTHON_PROBE = `import json, os, sys
def _itest_probe():
    out = {"executable": sys.executable, "version": "%d.%d.%d" % sys.version_info[:3], "modules": {}}
    for name in filter(None, os.environ.get("ITEST_PROBE_MODULES", "").split(",")):
        try:
            __import__(name)
            out["modules"][name] = None
        except BaseException as e:
            out["modules"][name] = "%s: %s" % (type(e).__name__, e)
    sys.stdout.write(${JSON.stringify(MARKER)} + json.dumps(out) + "\\n")
    sys.stdout.flush()
if __name__ == "__main__":
    _itest_probe()
elif os.environ.get("ITEST_MKOSI_PROBE") == "1" and "mkosi" in " ".join(getattr(sys, "orig_argv", sys.argv)):
    _itest_probe()
    os._exit(0)
`;

function parseReport(stdout: string): PythonFacts | undefined {
  const line = stdout.split('\n').find((l) => l.startsWith(MARKER));
  if (!line) return undefined;
  try {
    return JSON.parse(line.slice(MARKER.length)) as PythonFacts;
  } catch {
    return undefined;
  }
}

/**
 * Where mkosi 25+ finds `python3` for its helper scripts (bootloader.py python_binary): its own
 * sys.executable when that lives under /usr, else `python3` on the PATH of its sandbox. That PATH is the
 * host's minus /usr entries other than /usr/bin and /usr/sbin, plus /usr/bin, /usr/sbin, /usr/local/bin
 * (run.py finalize_path), and the sandbox only mounts /usr, /opt, /home and the /bin-style links, so a
 * python3 under /root (pyenv) or /tmp is not seen there. Pure.
 */
export function helperPythonCandidates(executable: string, pathEnv: string): string[] {
  if (executable.startsWith('/usr/')) return [executable];
  const dirs = pathEnv
    .split(':')
    .filter((d) => d === '/usr/bin' || d === '/usr/sbin' || !d.startsWith('/usr'));
  for (const d of ['/usr/bin', '/usr/sbin', '/usr/local/bin']) if (!dirs.includes(d)) dirs.push(d);
  const visible = /^\/(usr|opt|home|bin|sbin|nix\/store)(\/|$)/;
  return [...new Set(dirs.filter((d) => visible.test(d)))].map((d) => `${d.replace(/\/+$/, '')}/python3`);
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function onPath(name: string, pathEnv: string): Promise<string | null> {
  if (name.includes('/')) return (await executable(name)) ? name : null;
  for (const dir of pathEnv.split(':').filter(Boolean)) {
    if (await executable(join(dir, name))) return join(dir, name);
  }
  return null;
}

async function runPython(
  python: string,
  env: NodeJS.ProcessEnv,
  modules: string[],
): Promise<PythonFacts | string> {
  const r = await runCommand([python, '-c', PYTHON_PROBE], {
    env: { ...env, ITEST_PROBE_MODULES: modules.join(',') },
    timeoutMs: 30_000,
  });
  if (r.spawnError)
    return `${python}: ${r.spawnError.code === 'ENOENT' ? 'not found' : r.spawnError.message}`;
  return (
    parseReport(r.stdout) ??
    `${python} -c ... exited ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').pop() ?? ''}`
  );
}

/** The interpreter the mkosi repository's bin/mkosi picks (it also resets PYTHONPATH, so nothing can be injected). */
function upstreamLauncherPython(env: NodeJS.ProcessEnv): string {
  return env.MKOSI_INTERPRETER || 'python3';
}

/** The launcher's first 4 KiB: its shebang, and what a launcher script execs. */
async function launcherHead(argv0: string, pathEnv: string): Promise<string | undefined> {
  const path = await onPath(argv0, pathEnv);
  if (!path) return undefined;
  try {
    const fh = await open(await realpath(path), 'r');
    try {
      const buf = Buffer.alloc(4096);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('latin1');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/** The config asks for a tools tree (ToolsTree= set, or a mkosi.tools/ directory beside mkosi.conf). */
export async function configUsesToolsTree(configDir: string): Promise<boolean> {
  if ((await stat(join(configDir, 'mkosi.tools')).catch(() => undefined))?.isDirectory()) return true;
  const dropins = await readdir(join(configDir, 'mkosi.conf.d')).catch(() => [] as string[]);
  const files = [
    'mkosi.conf',
    'mkosi.local.conf',
    ...dropins.filter((f) => f.endsWith('.conf')).map((f) => join('mkosi.conf.d', f)),
  ];
  for (const f of files) {
    const text = await readFile(join(configDir, f), 'utf8').catch(() => '');
    for (const m of text.matchAll(/^\s*ToolsTree\s*=\s*(.*?)\s*$/gm)) {
      if (m[1] && !/^(no|false|0|off)$/i.test(m[1])) return true;
    }
  }
  return false;
}

/** Runs mkosi's launcher with the probe as sitecustomize.py; the report comes from mkosi's own interpreter. */
async function measure(
  mkosi: string[],
  env: NodeJS.ProcessEnv,
  modules: string[],
): Promise<PythonFacts | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'itest-mkosi-probe-'));
  try {
    await writeFile(join(dir, 'sitecustomize.py'), PYTHON_PROBE);
    const r = await runCommand([...mkosi, '--version'], {
      env: {
        ...env,
        PYTHONPATH: [dir, env.PYTHONPATH].filter(Boolean).join(':'),
        ITEST_MKOSI_PROBE: '1',
        ITEST_PROBE_MODULES: modules.join(','),
      },
      timeoutMs: 30_000,
    });
    return parseReport(r.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Finds the interpreter mkosi runs under by running mkosi's own launcher with a sitecustomize.py on
 * PYTHONPATH that reports from inside the interpreter and exits before mkosi starts; for the mkosi
 * repository's bin/mkosi (which resets PYTHONPATH) by that launcher's rule. Then imports the modules its
 * helper scripts need in the interpreter that runs them, and looks up the tools.
 */
export async function probeMkosiRuntime(mkosi: string[], opts: ProbeOptions = {}): Promise<MkosiRuntime> {
  const t0 = performance.now();
  // Never rejects: the host probe starts this before its other checks and awaits it last.
  return probe(mkosi, opts, t0).catch((e: Error) => ({
    tools: {},
    error: `the check itself failed: ${e.message}`,
    ms: Math.round(performance.now() - t0),
  }));
}

export interface ProbeOptions {
  env?: NodeJS.ProcessEnv;
  /** Modules to import (default: every module some mkosi version needs). */
  modules?: string[];
  /** Tools to look up on PATH (default: every tool some mkosi version needs). */
  tools?: string[];
  /** The mkosi config, to see whether it uses a tools tree. */
  configDir?: string;
}

async function probe(mkosi: string[], opts: ProbeOptions, t0: number): Promise<MkosiRuntime> {
  const env = opts.env ?? process.env;
  const pathEnv = env.PATH ?? '';
  const modules = opts.modules ?? PROBED_MODULES;
  const out: MkosiRuntime = { tools: {}, ms: 0 };
  const toolLookups = Promise.all(
    (opts.tools ?? PROBED_TOOLS).map(async (t) => [t, await onPath(t, pathEnv)] as const),
  );
  if (opts.configDir) out.toolsTree = await configUsesToolsTree(opts.configDir);

  let facts: PythonFacts | undefined;
  const head = mkosi[0] ? await launcherHead(mkosi[0], pathEnv) : undefined;
  if (head === undefined) {
    out.error = `${mkosi[0] ?? '(empty mkosi command)'} not found`;
  } else if (/^#!.*\bsh\b|^#!.*\bbash\b/.test(head) && head.includes('MKOSI_INTERPRETER')) {
    const r = await runPython(upstreamLauncherPython(env), env, modules);
    if (typeof r === 'string') out.error = `the interpreter of mkosi's bin/mkosi does not run: ${r}`;
    else out.interpreter = { ...(facts = r), how: 'launcher' };
  } else {
    facts = await measure(mkosi, env, modules);
    const exec = /^\s*(?:\S+=\S*\s+)*exec\s+(\/?[\w./-]*python3?[\d.]*)\s+(?:-\S+\s+)*-m\s+mkosi\b/m.exec(
      head,
    );
    if (facts) out.interpreter = { ...facts, how: 'measured' };
    else if (exec?.[1]) {
      // A shell launcher that sets PYTHONPATH itself: ask the Python it execs.
      const r = await runPython(exec[1], env, modules);
      if (typeof r === 'string') out.error = `the interpreter of ${mkosi[0]} does not run: ${r}`;
      else out.interpreter = { ...(facts = r), how: 'launcher' };
    } else
      out.error = `\`${mkosi.join(' ')}\` did not run Python with PYTHONPATH kept (its launcher resets it, or it is not Python)`;
  }

  if (facts) {
    const candidates = helperPythonCandidates(facts.executable, pathEnv);
    if (candidates[0] === facts.executable) out.helper = facts;
    else {
      let found: string | undefined;
      for (const c of candidates) if (!found && (await executable(c))) found = c;
      const r = found ? await runPython(found, env, modules) : undefined;
      if (r && typeof r !== 'string') out.helper = r;
      else out.helperSearched = candidates;
    }
  }
  out.tools = Object.fromEntries(await toolLookups);
  out.ms = Math.round(performance.now() - t0);
  return out;
}

export interface MkosiVerdict {
  problems: string[];
  warnings: string[];
}

function pipHint(python: string, module: string): string {
  // Debian's and Ubuntu's own interpreters get modules from apt; any other one from pip.
  return /^\/usr\/bin\/python3(\.\d+)?$/.test(python)
    ? ''
    : ` (or, for this interpreter: ${python} -m pip install ${module})`;
}

/** What is missing for mkosi `version` to run its verbs here, each with how to install it. Pure. */
export function mkosiRuntimeProblems(version: string, rt: MkosiRuntime): MkosiVerdict {
  const major = parseMkosiMajor(version);
  const problems: string[] = [];
  const warnings: string[] = [];
  if (major === undefined) return { problems, warnings };
  for (const need of TOOL_NEEDS) {
    if (major < need.since || (need.until !== undefined && major >= need.until)) continue;
    if (rt.toolsTree || !(need.tool in rt.tools) || rt.tools[need.tool]) continue;
    problems.push(
      `${need.tool} not found on PATH: mkosi ${version} needs it, since ${need.why}. Install it: apt-get install ${need.apt}`,
    );
  }
  const modules = MODULE_NEEDS.filter((n) => major >= n.since);
  if (modules.length === 0 || rt.toolsTree) return { problems, warnings };
  if (!rt.interpreter) {
    warnings.push(
      `could not tell which Python runs mkosi (${rt.error ?? 'unknown'}), so its Python modules (${modules.map((n) => n.module).join(', ')}) were not checked`,
    );
    return { problems, warnings };
  }
  if (!rt.helper) {
    problems.push(
      `python3 for mkosi's helper scripts not found: mkosi ${version} runs under ${rt.interpreter.executable}, which is outside /usr, ` +
        `so it runs its helper scripts with python3 from its sandbox's PATH, and there is none (looked for ${(rt.helperSearched ?? []).join(', ')}). Install it: apt-get install python3 ${modules.map((n) => n.apt).join(' ')}`,
    );
    return { problems, warnings };
  }
  const helper = rt.helper;
  const why =
    helper.executable === rt.interpreter.executable
      ? `mkosi ${version} runs its helper scripts with its own interpreter, ${helper.executable} (Python ${helper.version})`
      : `mkosi ${version} runs under ${rt.interpreter.executable} but its helper scripts with ${helper.executable} (Python ${helper.version}), the python3 its sandbox finds`;
  for (const need of modules) {
    const error = helper.modules[need.module];
    if (error === null || error === undefined) continue;
    problems.push(
      `Python module ${need.module} missing (${error}): ${why}, and ${need.why}. ` +
        `Install it: apt-get install ${need.apt}${pipHint(helper.executable, need.module)}`,
    );
  }
  return { problems, warnings };
}

/** One line for humans: which Python runs mkosi and its helpers, what they import, the tools. Pure. */
export function describeMkosiRuntime(rt: MkosiRuntime): string {
  const imports = (f: PythonFacts) =>
    Object.entries(f.modules)
      .map(([m, e]) => (e === null ? `imports ${m}` : `cannot import ${m}`))
      .join(', ');
  const parts: string[] = [];
  if (rt.interpreter)
    parts.push(`Python ${rt.interpreter.executable} ${rt.interpreter.version} (${rt.interpreter.how})`);
  else parts.push(`Python unknown: ${rt.error ?? 'not checked'}`);
  if (rt.helper) {
    const same = rt.interpreter && rt.helper.executable === rt.interpreter.executable;
    parts.push(
      `helper scripts: ${same ? 'the same' : rt.helper.executable}${imports(rt.helper) ? `, ${imports(rt.helper)}` : ''}`,
    );
  } else if (rt.interpreter) parts.push('helper scripts: no python3 found');
  for (const [tool, path] of Object.entries(rt.tools)) parts.push(`${tool} ${path ?? 'not found'}`);
  if (rt.toolsTree) parts.push('tools tree in use');
  return `${parts.join('; ')} (checked in ${rt.ms} ms)`;
}

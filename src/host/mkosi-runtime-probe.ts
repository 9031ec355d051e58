/**
 * Finds the interpreter mkosi really runs under and what it and the interpreter of mkosi's helper scripts
 * can import, and looks up the tools some mkosi version execs (probeMkosiRuntime: runs processes, reads
 * files). What is needed and what is missing is decided in mkosi-needs.ts (pure).
 */
import { constants } from 'node:fs';
import { access, mkdtemp, open, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../util/process.ts';
import {
  helperPythonCandidates,
  PROBED_MODULES,
  PROBED_TOOLS,
  type MkosiRuntime,
  type PythonFacts,
} from './mkosi-needs.ts';

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

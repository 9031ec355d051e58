/**
 * What mkosi needs besides its own modules, per version, and what is missing (pure: no processes, no
 * files). `mkosi --version` only proves that mkosi's own modules import: the Python modules its helper
 * scripts import (pefile, run in a separate interpreter) and bwrap, which mkosi 24 runs every command in,
 * fail later, mid-run, with an error that only the console log shows. mkosi-runtime-probe.ts finds out
 * what this host has (MkosiRuntime); this module decides what is missing for a given mkosi version and how
 * to install it (mkosiRuntimeProblems), and says in one line what was found (describeMkosiRuntime).
 */
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

export interface MkosiVerdict {
  problems: string[];
  warnings: string[];
}

/** One thing missing for mkosi's verbs, with what installs it. */
export interface MkosiProblem {
  text: string;
  /** The Debian and Ubuntu packages that provide it (the `Install it:` of `text`). */
  apt: string[];
  /** The Python modules it is about; empty for a tool. */
  modules: string[];
}

function pipHint(python: string, module: string): string {
  // Debian's and Ubuntu's own interpreters get modules from apt; any other one from pip.
  return /^\/usr\/bin\/python3(\.\d+)?$/.test(python)
    ? ''
    : ` (or, for this interpreter: ${python} -m pip install ${module})`;
}

/** The Python modules mkosi `version` needs besides its own (for its helper scripts). Pure. */
export function mkosiModuleNeeds(version: string): string[] {
  const major = parseMkosiMajor(version);
  return major === undefined ? [] : MODULE_NEEDS.filter((n) => major >= n.since).map((n) => n.module);
}

/** What is missing for mkosi `version` to run its verbs here, each with how to install it. Pure. */
export function mkosiRuntimeProblems(version: string, rt: MkosiRuntime): MkosiVerdict {
  const { problems, warnings } = mkosiRuntimeNeeds(version, rt);
  return { problems: problems.map((p) => p.text), warnings };
}

/** mkosiRuntimeProblems with each problem's packages and modules (what a runner setup can install). Pure. */
export function mkosiRuntimeNeeds(
  version: string,
  rt: MkosiRuntime,
): { problems: MkosiProblem[]; warnings: string[] } {
  const major = parseMkosiMajor(version);
  const problems: MkosiProblem[] = [];
  const warnings: string[] = [];
  if (major === undefined) return { problems, warnings };
  for (const need of TOOL_NEEDS) {
    if (major < need.since || (need.until !== undefined && major >= need.until)) continue;
    if (rt.toolsTree || !(need.tool in rt.tools) || rt.tools[need.tool]) continue;
    problems.push({
      text: `${need.tool} not found on PATH: mkosi ${version} needs it, since ${need.why}. Install it: apt-get install ${need.apt}`,
      apt: [need.apt],
      modules: [],
    });
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
    const apt = ['python3', ...modules.map((n) => n.apt)];
    problems.push({
      text:
        `python3 for mkosi's helper scripts not found: mkosi ${version} runs under ${rt.interpreter.executable}, which is outside /usr, ` +
        `so it runs its helper scripts with python3 from its sandbox's PATH, and there is none (looked for ${(rt.helperSearched ?? []).join(', ')}). Install it: apt-get install ${apt.join(' ')}`,
      apt,
      modules: modules.map((n) => n.module),
    });
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
    problems.push({
      text:
        `Python module ${need.module} missing (${error}): ${why}, and ${need.why}. ` +
        `Install it: apt-get install ${need.apt}${pipHint(helper.executable, need.module)}`,
      apt: [need.apt],
      modules: [need.module],
    });
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

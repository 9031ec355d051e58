/**
 * The mkosi runtime check with real interpreters: launchers in a temp directory that exec /usr/bin/python3
 * or a virtual environment's python (which genuinely lacks the system's modules), stub modules on
 * PYTHONPATH, the mkosi repository's own bin/mkosi, and the real mkosi launchers when this host has them.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configUsesToolsTree, probeMkosiRuntime } from '../../src/host/mkosi-runtime-probe.ts';
import {
  helperPythonCandidates,
  mkosiRuntimeProblems,
  type MkosiRuntime,
  type PythonFacts,
} from '../../src/host/mkosi-needs.ts';
import { decideHost, HostNotReady } from '../../src/host/decide.ts';
import type { HostInfo } from '../../src/host/probe.ts';
import { runCommand } from '../../src/util/process.ts';
import { UPSTREAM_BIN_MKOSI } from '../helpers/mkosi-archive.ts';

const SYSTEM_PYTHON = '/usr/bin/python3';
const skipNoPython = existsSync(SYSTEM_PYTHON) ? false : `${SYSTEM_PYTHON} does not exist`;
let work: string;
let venvPython: string;
let venvSkip: string | undefined;

async function script(name: string, body: string): Promise<string> {
  const path = join(work, name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Whether `python` imports `module`, asked directly (the check must agree with this). */
async function imports(python: string, module: string): Promise<boolean> {
  return (await runCommand([python, '-c', `import ${module}`])).code === 0;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'itest-mkosi-check-'));
  await mkdir(join(work, 'stubs'));
  await writeFile(join(work, 'stubs', 'itest_stub_present.py'), 'VALUE = 1\n');
  await writeFile(join(work, 'stubs', 'pefile.py'), 'class PE:\n    pass\n');
  if (!skipNoPython) {
    // A virtual environment without system site-packages: a real interpreter outside /usr without pefile.
    const r = await runCommand([SYSTEM_PYTHON, '-m', 'venv', '--without-pip', join(work, 'venv')]);
    if (r.code === 0) venvPython = join(work, 'venv', 'bin', 'python3');
    else venvSkip = `python3 -m venv failed: ${r.stderr.trim().split('\n').pop()}`;
  }
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('probeMkosiRuntime (real interpreters)', { skip: skipNoPython }, () => {
  it('measures the interpreter inside a launcher that execs /usr/bin/python3 -m mkosi, and imports there', async () => {
    const mkosi = await script(
      'mkosi-usr',
      `PYTHONPATH="${work}/stubs\${PYTHONPATH:+:$PYTHONPATH}" exec ${SYSTEM_PYTHON} -m mkosi "$@"`,
    );
    const rt = await probeMkosiRuntime([mkosi], { modules: ['itest_stub_present', 'itest_stub_absent'] });
    assert.equal(rt.error, undefined);
    assert.equal(rt.interpreter?.how, 'measured');
    assert.equal(rt.interpreter?.executable, SYSTEM_PYTHON);
    assert.match(rt.interpreter?.version ?? '', /^3\.\d+\.\d+$/);
    assert.equal(rt.interpreter?.modules.itest_stub_present, null);
    assert.equal(
      rt.interpreter?.modules.itest_stub_absent,
      "ModuleNotFoundError: No module named 'itest_stub_absent'",
    );
    // Under /usr, mkosi runs its helper scripts with that same interpreter.
    assert.deepEqual(rt.helper, {
      executable: rt.interpreter?.executable,
      version: rt.interpreter?.version,
      modules: rt.interpreter?.modules,
    });
    // The report came from the sitecustomize hook: mkosi itself (not importable here) never ran.
    assert.ok(rt.ms < 10_000, `took ${rt.ms} ms`);
  });

  it('with pefile importable for the helper, mkosi 27 is ready', async () => {
    const mkosi = await script(
      'mkosi-usr-pefile',
      `PYTHONPATH="${work}/stubs\${PYTHONPATH:+:$PYTHONPATH}" exec ${SYSTEM_PYTHON} -m mkosi "$@"`,
    );
    const rt = await probeMkosiRuntime([mkosi]);
    assert.equal(rt.helper?.modules.pefile, null);
    assert.deepEqual(mkosiRuntimeProblems('27.1', rt).problems, []);
  });

  it("a python outside /usr without pefile: mkosi runs under it, but its helper is the sandbox's python3", async (t) => {
    if (venvSkip) return t.skip(venvSkip);
    const mkosi = await script('mkosi-venv', `exec ${venvPython} -m mkosi "$@"`);
    const rt = await probeMkosiRuntime([mkosi], { env: { ...process.env, PATH: '/usr/bin:/bin' } });
    assert.equal(rt.interpreter?.executable, venvPython);
    assert.match(rt.interpreter?.modules.pefile ?? '', /^ModuleNotFoundError: No module named 'pefile'/);
    assert.equal(rt.helper?.executable, SYSTEM_PYTHON);
    const has = await imports(SYSTEM_PYTHON, 'pefile');
    assert.equal(rt.helper?.modules.pefile === null, has);
    const v = mkosiRuntimeProblems('27.1', rt);
    if (has) assert.deepEqual(v.problems, []);
    else {
      assert.equal(v.problems.length, 1);
      assert.match(v.problems[0]!, /Python module pefile missing/);
      assert.match(
        v.problems[0]!,
        new RegExp(`runs under ${venvPython} but its helper scripts with /usr/bin/python3`),
      );
      assert.match(v.problems[0]!, /apt-get install python3-pefile/);
    }
  });

  it("the mkosi repository's bin/mkosi (resets PYTHONPATH): by its rule, MKOSI_INTERPRETER first", async (t) => {
    if (venvSkip) return t.skip(venvSkip);
    const tree = join(work, 'mkosi-25.3');
    await mkdir(join(tree, 'bin'), { recursive: true });
    await writeFile(join(tree, 'bin', 'mkosi'), UPSTREAM_BIN_MKOSI);
    await chmod(join(tree, 'bin', 'mkosi'), 0o755);
    const rt = await probeMkosiRuntime([join(tree, 'bin', 'mkosi')], {
      env: { ...process.env, MKOSI_INTERPRETER: venvPython },
    });
    assert.equal(rt.interpreter?.how, 'launcher');
    assert.equal(rt.interpreter?.executable, venvPython);
  });

  it('a shell launcher that sets PYTHONPATH itself: asks the python it execs', async () => {
    const mkosi = await script(
      'mkosi-reset',
      `PYTHONPATH=/nonexistent exec ${SYSTEM_PYTHON} -B -m mkosi "$@"`,
    );
    const rt = await probeMkosiRuntime([mkosi]);
    assert.equal(rt.interpreter?.how, 'launcher');
    assert.equal(rt.interpreter?.executable, SYSTEM_PYTHON);
  });

  it('not Python, or not there: unknown interpreter, a warning and no problem', async () => {
    const fake = await script('mkosi-fake', 'echo "mkosi 27.1"');
    const rt = await probeMkosiRuntime([fake]);
    assert.equal(rt.interpreter, undefined);
    assert.match(rt.error ?? '', /did not run Python/);
    const v = mkosiRuntimeProblems('27.1', rt);
    assert.deepEqual(v.problems, []);
    assert.match(v.warnings[0] ?? '', /could not tell which Python runs mkosi.*pefile.*not checked/);
    const missing = await probeMkosiRuntime([join(work, 'no-such-mkosi')]);
    assert.match(missing.error ?? '', /no-such-mkosi not found/);
  });

  it('looks the tools up on PATH', async () => {
    const bin = join(work, 'bin');
    await mkdir(bin, { recursive: true });
    await script('bin/bwrap', 'exit 0');
    const found = await probeMkosiRuntime([join(work, 'none')], { env: { PATH: bin } });
    assert.equal(found.tools.bwrap, join(bin, 'bwrap'));
    const absent = await probeMkosiRuntime([join(work, 'none')], { env: { PATH: join(work, 'stubs') } });
    assert.equal(absent.tools.bwrap, null);
  });

  const real = ['/usr/bin/mkosi', '/var/cache/itest-ci/mkosi-sid/bin/mkosi'].filter((p) => existsSync(p));
  for (const launcher of real) {
    it(`the real ${launcher} runs under the interpreter its helper also uses`, async () => {
      const rt = await probeMkosiRuntime([launcher]);
      assert.equal(rt.interpreter?.how, 'measured', rt.error);
      assert.match(rt.interpreter?.executable ?? '', /^\/usr\/bin\/python3/);
      assert.equal(rt.helper?.modules.pefile === null, await imports(rt.helper!.executable, 'pefile'));
    });
  }
});

describe('helperPythonCandidates', () => {
  it('an interpreter under /usr is its own helper', () => {
    assert.deepEqual(helperPythonCandidates('/usr/bin/python3', '/x:/usr/bin'), ['/usr/bin/python3']);
  });

  it("pyenv's python: its shims are not mounted in mkosi's sandbox, /usr/local/bin moves to the end", () => {
    assert.deepEqual(
      helperPythonCandidates(
        '/root/.pyenv/versions/3.11.7/bin/python3',
        '/root/.pyenv/shims:/usr/local/bin:/usr/bin:/bin',
      ),
      ['/usr/bin/python3', '/bin/python3', '/usr/sbin/python3', '/usr/local/bin/python3'],
    );
  });

  it("setup-python's interpreter under /opt is visible in the sandbox and comes first", () => {
    const py = '/opt/hostedtoolcache/Python/3.12.1/x64/bin';
    assert.deepEqual(helperPythonCandidates(`${py}/python3`, `${py}:/usr/bin`)[0], `${py}/python3`);
  });
});

const facts = (executable: string, pefile: string | null): PythonFacts => ({
  executable,
  version: '3.11.2',
  modules: { pefile },
});
const NO_PEFILE = "ModuleNotFoundError: No module named 'pefile'";
const runtime = (over: Partial<MkosiRuntime> = {}): MkosiRuntime => ({
  interpreter: { ...facts('/usr/bin/python3', NO_PEFILE), how: 'measured' },
  helper: facts('/usr/bin/python3', NO_PEFILE),
  tools: { bwrap: '/usr/bin/bwrap' },
  ms: 20,
  ...over,
});

describe('mkosiRuntimeProblems', () => {
  it('pefile: needed from mkosi 26 on (vm verb), not by 24 and 25', () => {
    for (const v of ['24.3', '25.3']) assert.deepEqual(mkosiRuntimeProblems(v, runtime()).problems, [], v);
    for (const v of ['26', '27.1']) {
      const [p, ...rest] = mkosiRuntimeProblems(v, runtime()).problems;
      assert.deepEqual(rest, []);
      assert.match(
        p ?? '',
        new RegExp(`^Python module pefile missing \\(${NO_PEFILE}\\): mkosi ${v} runs its helper`),
      );
      assert.match(p ?? '', /Install it: apt-get install python3-pefile$/);
    }
    assert.deepEqual(
      mkosiRuntimeProblems('27.1', runtime({ helper: facts('/usr/bin/python3', null) })).problems,
      [],
    );
  });

  it('an interpreter that apt does not serve also gets the pip command', () => {
    const py = '/opt/hostedtoolcache/Python/3.12.1/x64/bin/python3';
    const [p] = mkosiRuntimeProblems('27.1', runtime({ helper: facts(py, NO_PEFILE) })).problems;
    assert.match(p ?? '', new RegExp(`${py} -m pip install pefile\\)$`));
  });

  it('bwrap: needed by mkosi 24 only', () => {
    const rt = runtime({ tools: { bwrap: null }, helper: facts('/usr/bin/python3', null) });
    assert.deepEqual(mkosiRuntimeProblems('24.3', rt).problems, [
      'bwrap not found on PATH: mkosi 24.3 needs it, since it runs every command in bubblewrap. Install it: apt-get install bubblewrap',
    ]);
    assert.deepEqual(mkosiRuntimeProblems('25.3', rt).problems, []);
  });

  it('a tools tree brings its own helpers and tools', () => {
    const rt = runtime({ toolsTree: true, tools: { bwrap: null } });
    assert.deepEqual(mkosiRuntimeProblems('27.1', rt), { problems: [], warnings: [] });
    assert.deepEqual(mkosiRuntimeProblems('24.3', rt), { problems: [], warnings: [] });
  });

  it('no python3 for the helper scripts is a problem that says where it looked', () => {
    const rt = runtime({
      interpreter: { ...facts('/root/.pyenv/versions/3.11.7/bin/python3', null), how: 'measured' },
      helper: undefined,
      helperSearched: ['/usr/bin/python3'],
    });
    const [p] = mkosiRuntimeProblems('27.1', rt).problems;
    assert.match(
      p ?? '',
      /looked for \/usr\/bin\/python3\). Install it: apt-get install python3 python3-pefile$/,
    );
  });
});

describe('decideHost with the mkosi check', () => {
  const host = (mkosiReady: MkosiRuntime, version = '27.1'): HostInfo => ({
    arch: 'x86_64',
    mkosi: { command: ['mkosi'], version },
    qemu: { binary: 'qemu-system-x86_64', version: '10.0.2' },
    kvm: { usable: false, detail: 'no /dev/kvm' },
    vhostVsock: { usable: false, detail: 'no vsock' },
    journalRemote: '/usr/lib/systemd/systemd-journal-remote',
    journalctl: '/usr/bin/journalctl',
    cpus: 2,
    memTotal: 8 << 30,
    memAvailable: 6 << 30,
    mkosiReady,
  });

  it('a missing module stops the run (HostNotReady, exit 3) naming the package and the command', () => {
    assert.throws(
      () => decideHost(host(runtime()), { transport: 'auto', kvm: 'auto' }),
      (e: unknown) =>
        e instanceof HostNotReady &&
        e.problems.length === 1 &&
        /pefile.*apt-get install python3-pefile/.test(e.problems[0] ?? ''),
    );
    const ok = decideHost(host(runtime(), '24.3'), { transport: 'auto', kvm: 'no' });
    assert.equal(ok.dialect.name, 'mkosi24');
  });

  it('an unknown interpreter only warns', () => {
    const p = decideHost(host(runtime({ interpreter: undefined, helper: undefined, error: 'x' })), {
      transport: 'auto',
      kvm: 'no',
    });
    assert.ok(p.warnings.some((w) => /could not tell which Python runs mkosi \(x\)/.test(w)));
  });
});

describe('configUsesToolsTree', () => {
  it('reads ToolsTree= from mkosi.conf and its drop-ins, and a mkosi.tools/ directory', async () => {
    const cfg = join(work, 'cfg');
    await mkdir(join(cfg, 'mkosi.conf.d'), { recursive: true });
    await writeFile(join(cfg, 'mkosi.conf'), '[Distribution]\nDistribution=debian\n');
    assert.equal(await configUsesToolsTree(cfg), false);
    await writeFile(join(cfg, 'mkosi.conf.d', '10-tools.conf'), '[Build]\nToolsTree=no\n');
    assert.equal(await configUsesToolsTree(cfg), false);
    await writeFile(join(cfg, 'mkosi.conf.d', '10-tools.conf'), '[Build]\nToolsTree=default\n');
    assert.equal(await configUsesToolsTree(cfg), true);
    await rm(join(cfg, 'mkosi.conf.d'), { recursive: true });
    await mkdir(join(cfg, 'mkosi.tools'));
    assert.equal(await configUsesToolsTree(cfg), true);
  });
});

describe('scripts/check-host.ts (the fresh-root check runs it)', () => {
  const ROOT = new URL('../..', import.meta.url).pathname;
  const run = (...args: string[]) =>
    runCommand([process.execPath, '--import', 'tsx', 'scripts/check-host.ts', ...args], {
      cwd: ROOT,
      timeoutMs: 60_000,
    });

  it('exit 3 and the problem when an mkosi is not ready; exit 2 on a bad flag', async () => {
    const r = await run('--mkosi', join(work, 'no-such-mkosi'));
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /NOT READY: mkosi: .*no-such-mkosi: not found/);
    const u = await run('--bogus');
    assert.equal(u.code, 2);
    assert.match(u.stderr, /usage: node --import tsx scripts\/check-host\.ts/);
  });
});

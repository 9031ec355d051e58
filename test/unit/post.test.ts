/**
 * The post step after a cancel, for real: the main step (src/action/main-entry.ts under tsx, INPUT_* as the
 * runner sets them) runs the demo against the stand-in mkosi whose VMs hang, is killed with SIGKILL while
 * they run, and the post step then runs the way the runner starts it: STATE_* from the GITHUB_STATE file
 * main wrote, and the Actions services (local stand-ins) for the upload.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { partialState } from '../../src/action/post.ts';
import { leftovers } from '../../src/action/runner/leftovers.ts';
import type { Started } from '../../src/action/runner/started.ts';
import { descendants, withDescendants } from '../../src/util/process.ts';
import { hostArch } from '../../src/host/probe.ts';
import { ActionsServices } from '../helpers/actions-services.ts';
import { VHOST_DEVICE_VSOCK } from '../helpers/standin.ts';
import { cleanEnv, collect, isGone, listProcesses, pollFor, stateEnv } from '../helpers/step-processes.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const FAKE = join(ROOT, 'test/fixtures/fake-mkosi.mjs');
const DEVICE = VHOST_DEVICE_VSOCK !== '';
// The steps run in the workspace (not this repository), so tsx is named by its path.
const TSX = import.meta.resolve('tsx');

/** The post step as the runner starts it: a clean environment plus `env`. */
function runPost(cwd: string, env: Record<string, string>) {
  return collect(
    spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/action/post-entry.ts')], {
      cwd,
      env: { ...cleanEnv(), ...env },
    }),
  );
}

function kill(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

describe('post step: which processes are leftovers (pure)', () => {
  const out = '/w/itest-results';
  const image = '/rt/itest-image';
  const started: Started = {
    main: { pid: 10, start: 500 },
    vms: [{ machine: 'itest-t1-abc123-1', test: 'T1' }],
    imageDirs: [image, '/rt/itest-cache/build'],
  };
  const p = (pid: number, ppid: number, argv: string[], start = 600) => ({
    pid,
    ppid,
    argv,
    cmdline: argv.join(' '),
    start,
  });
  const ps = [
    p(1, 0, ['/sbin/init'], 0),
    p(10, 1, ['node', 'main.js'], 500),
    p(11, 1, ['node', 'post.js'], 900),
    p(20, 1, [
      'mkosi',
      '--machine=itest-t1-abc123-1',
      'vm',
      '-chardev',
      `file,id=itest-status,path=${out}/.work/T1/status`,
    ]),
    p(21, 20, ['bwrap', '--new-session', 'qemu-system-x86_64', '-name', 'itest-t1-abc123-1']),
    p(22, 21, ['qemu-system-x86_64', '-name', 'itest-t1-abc123-1']),
    // Orphaned (its mkosi is gone) but carries the machine name.
    p(30, 1, ['virtiofsd', '--tag', 'itest-t1-abc123-1']),
    // The image build, and what it runs.
    p(50, 1, ['mkosi', '--directory', '/w/mkosi', '--output-dir', `${image}`, '--force', 'build']),
    p(51, 50, ['apt-get', 'install', 'systemd']),
    // Another run's VM on the same host, naming this output directory: not recorded, not ours.
    p(40, 1, ['mkosi', '--machine=itest-t1-ffffff-1', 'vm', '-chardev', `file,path=${out}/.work/T1/status`]),
    p(41, 40, ['sleep', '1000']),
    // A machine name that only starts like ours.
    p(42, 1, ['mkosi', '--machine=itest-t1-abc123-10', 'vm']),
    // Started before the main step: whatever it names, never ours (a PID reused, an older job's leftover).
    p(60, 1, ['mkosi', '--machine=itest-t1-abc123-1', 'vm'], 100),
    p(61, 1, ['mkosi', '--output-dir', image, 'build'], 100),
    // A workspace process naming the output directory and a sibling of the image directory.
    p(70, 1, ['tail', '-f', `${out}/T1.console.log`, `${image}-old/x`]),
  ];

  it('finds the recorded VMs and the image build, with every descendant; nothing else, never itself', () => {
    const r = leftovers(ps, started, 11);
    assert.deepEqual(
      r.pids.sort((a, b) => a - b),
      [20, 21, 22, 30, 50, 51],
    );
    assert.deepEqual(r.machines, ['itest-t1-abc123-1']);
    assert.deepEqual(r.running, ['T1']);
    assert.equal(r.build, true);
    assert.equal(leftovers(ps, started, 20).pids.includes(20), false, 'never the post step itself');
    assert.deepEqual(
      leftovers(ps, { vms: started.vms, imageDirs: started.imageDirs }).pids,
      [],
      'no main: nothing',
    );
  });

  it('partialState lists the kept files and the tests that had started, with the status of those that reported', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-post-state-'));
    await mkdir(join(dir, '.work/A'), { recursive: true });
    await mkdir(join(dir, '.work/B'), { recursive: true });
    await writeFile(join(dir, '.work/A/status'), 'SERVICE_RESULT=success EXIT_CODE=exited EXIT_STATUS=0\n');
    await writeFile(join(dir, '.work/B/journal.export'), 'MESSAGE=x\n\n');
    for (const f of [
      'A.console.log',
      'A.journal',
      'B.attempt-1.console.log',
      'B.console.log',
      'image-build.log',
    ])
      await writeFile(join(dir, f), 'x');
    const s = await partialState(dir);
    assert.deepEqual(s.started, [
      { name: 'A', status: 'SERVICE_RESULT=success EXIT_CODE=exited EXIT_STATUS=0' },
      { name: 'B' },
    ]);
    assert.deepEqual(
      s.files.map((f) => f.slice(dir.length + 1)),
      [
        'A.console.log',
        'A.journal',
        'B.attempt-1.console.log',
        'B.console.log',
        'image-build.log',
        '.work/B/journal.export',
      ],
    );
  });
});

describe('post step after the main step was killed (real processes, local Actions services)', () => {
  const services = new ActionsServices();
  const started: number[] = [];
  before(() => services.start());
  after(async () => {
    kill(started);
    await services.stop();
  });

  async function setup() {
    const dir = await mkdtemp(join(tmpdir(), 'itest-post-'));
    const files = {
      state: join(dir, 'state'),
      output: join(dir, 'output'),
      summary: join(dir, 'summary.md'),
      postSummary: join(dir, 'post-summary.md'),
    };
    for (const f of Object.values(files)) await writeFile(f, '');
    const out = join(dir, 'itest-results');
    const inputs = {
      INPUT_CONFIG: join(ROOT, 'examples/demo'),
      INPUT_MKOSI: FAKE,
      'INPUT_SETUP-RUNNER': 'false',
      INPUT_CACHE: 'false',
      INPUT_OUTPUT: out,
      INPUT_JOBS: '2',
      // vsock-user where vhost-device-vsock is on PATH (as after scripts/setup-host.sh), so that each VM
      // also has its device and journal-remote, children of the main step, for the post step to find.
      INPUT_TRANSPORT: DEVICE ? 'vsock-user' : 'serial',
      // A matrix leg's label: the partial artifact must carry it, or legs overwrite each other.
      INPUT_LABEL: 'leg-a',
      'INPUT_ARTIFACT-PREFIX': 'itest-logs',
      'INPUT_RETENTION-DAYS': '3',
      'INPUT_UPLOAD-LOGS': 'failed',
    };
    const github = { GITHUB_JOB: 'itest', GITHUB_RUN_ATTEMPT: '1', GITHUB_WORKSPACE: dir, RUNNER_TEMP: dir };
    return { dir, out, files, inputs, github };
  }

  it('SIGKILL of the main step mid-run: post stops the leftover VMs, summarizes and uploads what exists', async () => {
    const { dir, out, files, inputs, github } = await setup();
    // The first invocation is the image build (exits 0 with an empty image); every VM after it hangs.
    const main = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/action/main-entry.ts')], {
      cwd: dir,
      env: {
        ...cleanEnv(),
        ...inputs,
        ...github,
        GITHUB_STATE: files.state,
        GITHUB_OUTPUT: files.output,
        GITHUB_STEP_SUMMARY: files.summary,
        FAKE_MKOSI_PLAN: 'exit:0,hang',
        FAKE_MKOSI_STATE: join(dir, 'invocations'),
        FAKE_MKOSI_CHILD: join(dir, 'child.pid'),
      },
    });
    started.push(main.pid!);
    const mainDone = collect(main);
    let mainExited = false;
    void mainDone.then(() => (mainExited = true));

    // Wait for both VMs (stand-in mkosi) and their grandchildren.
    let vms: number[] = [];
    let tree: number[] = [];
    await pollFor(
      async () => {
        // Only this main step's: other test files run the same stand-in at the same time.
        const ps = await listProcesses();
        const mine = withDescendants(ps, [main.pid!]);
        vms = ps
          .filter((p) => mine.has(p.pid) && p.cmdline.includes(FAKE) && p.cmdline.includes(' vm '))
          .map((p) => p.pid);
        tree = [...vms, ...(await Promise.all(vms.map(descendants))).flat()];
        started.push(...tree);
        return vms.length === 2 && tree.length === 4 ? true : undefined;
      },
      { seconds: 120, stop: () => mainExited },
    );
    if (vms.length !== 2 || tree.length !== 4) {
      main.kill('SIGKILL');
      assert.fail(`two VMs with their grandchildren did not come up; main said:\n${(await mainDone).stdout}`);
    }

    main.kill('SIGKILL');
    const m = await mainDone;
    assert.match(m.stdout, /start {2}TEST-01-BASIC/);
    for (const p of tree)
      assert.equal(await isGone(p), false, `${p} outlives the main step (that is the problem)`);

    // Each VM: the stand-in mkosi and its grandchild; on vsock-user also its vhost-device-vsock and
    // journal-remote, named by the VM's socket directory (`/tmp/<machine>.vsock/...`).
    const procs = await listProcesses();
    const machines = procs
      .filter((p) => vms.includes(p.pid))
      .map((p) => p.argv.find((a) => a.startsWith('--machine='))!.slice('--machine='.length));
    const helpers = procs.filter(
      (p) =>
        /(vhost-device-vsock|systemd-journal-remote)$/.test(p.argv[0] ?? '') &&
        machines.some((m) => p.cmdline.includes(`/${m}.vsock/`)),
    );
    started.push(...helpers.map((h) => h.pid));
    assert.equal(helpers.length, DEVICE ? 4 : 0, helpers.map((p) => p.cmdline).join('\n'));
    const state = stateEnv(await readFile(files.state, 'utf8'));
    assert.deepEqual(state, {
      STATE_output: out,
      STATE_label: 'leg-a',
      STATE_started: join(dir, `itest-started-${main.pid}.jsonl`),
    });
    const calls = services.calls.length;
    const post = await runPost(dir, {
      ...inputs,
      ...github,
      ...services.env(),
      ...state,
      GITHUB_STEP_SUMMARY: files.postSummary,
    });
    assert.equal(post.code, 0, post.stderr);
    assert.match(
      post.stdout,
      new RegExp(
        `^post: stopped ${DEVICE ? 8 : 4} leftover process\\(es\\) of 2 VM\\(s\\): itest-test-0[13]-[a-z-]+-[0-9a-f]{6}-1, itest-test-0[13]`,
        'm',
      ),
    );
    for (const p of [...tree, ...helpers.map((h) => h.pid)])
      assert.ok(await isGone(p), `leftover ${p} stopped by the post step`);

    const summary = await readFile(files.postSummary, 'utf8');
    assert.match(summary, /^## ⚠️ itest did not finish/m);
    assert.match(summary, new RegExp(`stopped 2 leftover VM\\(s\\) \\(${DEVICE ? 8 : 4} processes\\)`));
    assert.match(summary, /^\| TEST-01-BASIC \| was running; its VM was stopped by the post step \|$/m);
    assert.match(
      summary,
      /^\| TEST-03-EXPECTED-FAIL \| was running; its VM was stopped by the post step \|$/m,
    );
    assert.ok(!summary.includes('TEST-02-SKIP'), 'the third test had not started');
    const listed = [...summary.matchAll(/^- `([^`]+)`$/gm)].map((x) => x[1]!);
    assert.deepEqual(
      listed.map((f) => f.slice(out.length + 1)),
      // On vsock-user journal-remote writes each VM's journal as it arrives: what came before the kill is
      // there to upload too.
      DEVICE
        ? [
            'TEST-01-BASIC.console.log',
            'TEST-01-BASIC.journal',
            'TEST-03-EXPECTED-FAIL.console.log',
            'TEST-03-EXPECTED-FAIL.journal',
            'image-build.log',
          ]
        : ['TEST-01-BASIC.console.log', 'TEST-03-EXPECTED-FAIL.console.log', 'image-build.log'],
    );
    for (const f of listed) assert.ok(existsSync(f), `${f} exists`);

    const name = `itest-logs-partial-itest-leg-a-${hostArch()}-attempt1`;
    assert.match(summary, new RegExp(`Uploaded as artifact \`${name}\``));
    assert.ok(services.calls.slice(calls).includes('twirp CreateArtifact'));
    const zip = await services.artifactBytes(name);
    assert.ok(zip && zip.subarray(0, 2).toString() === 'PK', 'a zip reached blob storage');
    assert.ok(zip.includes(Buffer.from('TEST-01-BASIC.console.log')));
    assert.equal(await readFile(files.summary, 'utf8'), '', 'the main step never reported');
  });

  it('after a main step that finished (state done=true) the post step does nothing', async () => {
    const { dir, out, files, inputs, github } = await setup();
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'T.console.log'), 'x');
    // A process naming the output directory, as a VM would: must survive.
    const decoy = spawn('sleep', ['1000'], { stdio: 'ignore', argv0: `sleep ${out}/.work/T/status` });
    started.push(decoy.pid!);
    const calls = services.calls.length;
    const post = await runPost(dir, {
      ...inputs,
      ...github,
      ...services.env(),
      STATE_output: out,
      STATE_done: 'true',
      GITHUB_STEP_SUMMARY: files.postSummary,
    });
    assert.equal(post.code, 0, post.stderr);
    assert.equal(post.stdout, '');
    assert.equal(await readFile(files.postSummary, 'utf8'), '');
    assert.equal(services.calls.length, calls, 'no upload');
    assert.equal(await isGone(decoy.pid!), false, 'nothing killed');
    decoy.kill('SIGKILL');
  });
});

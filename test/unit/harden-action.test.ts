/**
 * Issue 12, the action and the workflows against hostile input and for least privilege: items 10 (guest
 * text in the log, the job summary and the terminal), 11 (which runs save the image), 12 (the workflows),
 * 13 with the post step's side of 4 (what the post step stops) and 15 (runner setup on self-hosted
 * runners). Real @actions/core, @actions/cache and @actions/artifact against the local stand-ins, real
 * processes for the post step, bash for the workflows' own scripts, and a model of the runner's workflow
 * command parser (actions/runner ActionCommand.cs and ActionCommandManager.cs) to read the logs with.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { fenceCommands } from '../../src/action/github/log.ts';
import { codeSpan } from '../../src/action/github/markdown.ts';
import { renderSummary } from '../../src/action/github/summary.ts';
import { jobImageCache } from '../../src/action/github/actions-cache.ts';
import { readContext } from '../../src/action/github/context.ts';
import { parseInputs } from '../../src/action/inputs.ts';
import { readyRunner } from '../../src/action/runner/ready.ts';
import { progressEnd, renderReport } from '../../src/results/terminal.ts';
import type { TestResult } from '../../src/results/model.ts';
import { descendants, withDescendants } from '../../src/util/process.ts';
import { ActionsServices } from '../helpers/actions-services.ts';
import { runStep } from '../helpers/action-step.ts';
import { cleanEnv, collect, isGone, listProcesses, pollFor, stateEnv } from '../helpers/step-processes.ts';
import { results, testResult } from '../helpers/results.ts';
import { digestOf } from '../helpers/red-run.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEMO = join(ROOT, 'examples/demo');
const FAKE = join(ROOT, 'test/fixtures/fake-mkosi.mjs');
const TSX = import.meta.resolve('tsx');

// One set of Actions services for the cache policy and the post step.
const services = new ActionsServices();
before(() => services.start());
after(() => services.stop());

// --- The runner's reading of a step's output -------------------------------------------------------

/** The commands the runner registers (the extensions of ActionCommandManager, plus stop-commands). */
const REGISTERED = [
  'add-mask',
  'add-matcher',
  'add-path',
  'debug',
  'echo',
  'endgroup',
  'error',
  'group',
  'notice',
  'remove-matcher',
  'save-state',
  'set-env',
  'set-output',
  'stop-commands',
  'warning',
];

interface Command {
  command: string;
  props: Record<string, string>;
  data: string;
  line: string;
}

function command(line: string, info: string, data: string, sep: string, known: Set<string>) {
  const sp = info.indexOf(' ');
  const name = (sp < 0 ? info : info.slice(0, sp)).toLowerCase();
  if (!known.has(name)) return undefined;
  const props: Record<string, string> = {};
  if (sp > 0)
    for (const p of info.slice(sp + 1).split(sep)) {
      const [k, v] = [p.slice(0, p.indexOf('=')).trim(), p.slice(p.indexOf('=') + 1)];
      if (p.includes('=') && k) props[k] = decodeURIComponent(v.replace(/%(?![0-9A-F]{2})/g, '%25'));
    }
  return { command: name, props, data: data.replace(/%0D/g, '\r').replace(/%0A/g, '\n'), line };
}

/** TryParseV2: `::name props::data` once leading blanks are trimmed; TryParse: `##[name props]data` anywhere. */
function parseLine(line: string, known: Set<string>): Command | undefined {
  const t = line.trimStart();
  if (t.startsWith('::')) {
    const end = t.indexOf('::', 2);
    if (end >= 0) {
      const c = command(line, t.slice(2, end), t.slice(end + 2), ',', known);
      if (c) return c;
    }
  }
  const at = line.indexOf('##[');
  const rb = at < 0 ? -1 : line.indexOf(']', at);
  return rb < 0 ? undefined : command(line, line.slice(at + 3, rb), line.slice(rb + 1), ';', known);
}

/** What the runner does with a log: the commands it carries out, honouring stop-commands and its token. */
function executed(log: string): Command[] {
  const known = new Set(REGISTERED);
  let token: string | undefined;
  const out: Command[] = [];
  for (const line of log.split(/\r\n|\r|\n/)) {
    const c = parseLine(line, known);
    if (!c) continue;
    if (token !== undefined) {
      if (c.command === token) {
        known.delete(token);
        token = undefined;
      }
      continue;
    }
    if (c.command === 'stop-commands') {
      token = c.data.toLowerCase();
      known.add(token);
      continue;
    }
    out.push(c);
  }
  return out;
}

/** Lines a guest might print, each a workflow command (the last one would swallow every later command). */
const EVIL = [
  '::add-mask::PWNED-mask',
  '      ::set-output name=ok::PWNED-output',
  '::error title=PWNED::PWNED-error',
  'progress 50% ##[set-env name=PWNED]PWNED-env',
  '::warning::PWNED-warning',
  '::stop-commands::PWNED-stop',
];

/** The commands in `log` that the guest's text issued: none may remain once the action fences it. */
function guestCommands(log: string): Command[] {
  return executed(log).filter(
    (c) =>
      !['error', 'warning', 'notice', 'debug'].includes(c.command) ||
      Object.values(c.props).some((v) => v.includes('PWNED')) ||
      c.data.startsWith('PWNED'),
  );
}

const digest = (over: Partial<NonNullable<TestResult['digest']>> = {}) => digestOf({ entries: 10, ...over });

/** A failed test whose every guest-derived field carries workflow commands. */
const evilTest = () =>
  testResult('B', 'fail', {
    reason: '::error title=PWNED::PWNED-reason',
    outputTail: EVIL,
    digest: digest({
      unitOutput: EVIL,
      failedUnits: [{ unit: '::add-mask::PWNED-unit', result: 'exit-code' }],
      subtests: [{ name: '::warning::PWNED-subtest', result: 'fail', message: '::add-mask::PWNED-message' }],
    }),
  });

describe('10. guest text in the log issues no workflow command', () => {
  it('fenceCommands fences text that could hold a command with a fresh token, and leaves other text alone', () => {
    assert.equal(
      fenceCommands('[1/3] PASS   TEST-01  2.0 s  unit succeeded'),
      '[1/3] PASS   TEST-01  2.0 s  unit succeeded',
    );
    const a = fenceCommands(EVIL.join('\n'));
    const b = fenceCommands(EVIL.join('\n'));
    const token = /^::stop-commands::([0-9a-f]{32})\n/.exec(a)?.[1];
    assert.ok(token, a);
    assert.ok(a.endsWith(`\n::${token}::`));
    assert.notEqual(token, /^::stop-commands::([0-9a-f]{32})/.exec(b)?.[1], 'a fresh token every time');
    assert.deepEqual(guestCommands(a), []);
    assert.ok(
      guestCommands(EVIL.join('\n')).length >= 5,
      'the model of the runner sees the raw lines as commands',
    );
    assert.match(fenceCommands('a ##[group]b'), /^::stop-commands::/);
  });

  it('report mode: the terminal report (unit lines, failed units, subtests, reasons) issues none; the annotations still come', async () => {
    const dl = await mkdtemp(join(tmpdir(), 'itest-evil-dl-'));
    await mkdir(join(dl, 'shard-1'));
    const r0 = { ...results([evilTest(), testResult('A', 'pass')]) };
    await writeFile(join(dl, 'shard-1', 'results.json'), JSON.stringify(r0));
    const r = await runStep({
      argv: ['--import', 'tsx', join(ROOT, 'src/action/main-entry.ts')],
      cwd: ROOT,
      env: { ...cleanEnv(), GITHUB_WORKSPACE: ROOT, GITHUB_RUN_ID: '9', GITHUB_JOB: 'itest' },
      inputs: { mode: 'report', merge: dl },
      prepare: (dir) => ({ INPUT_OUTPUT: join(dir, 'merged') }),
    });
    assert.equal(r.code, 1, r.stdout.slice(-3000));
    // The guest's lines are all in the log, for a human to read...
    for (const l of [
      '::add-mask::PWNED-mask',
      '::set-output name=ok::PWNED-output',
      '::warning::PWNED-subtest',
    ])
      assert.ok(r.stdout.includes(l), l);
    // ...and the runner obeys none of them, while the action's own annotation, printed later, is carried out.
    assert.deepEqual(
      guestCommands(r.stdout).map((c) => c.line),
      [],
    );
    assert.ok(executed(r.stdout).some((c) => c.command === 'error' && c.props.title === 'itest: B failed'));
    assert.equal(r.outputs.ok, 'false');
  });

  it('run mode: progress lines and the engine news that quote guest text issue none', async () => {
    // The real main step with its Ui, the run mode replaced by one that reports as the engine does.
    const code = `
      const { main } = await import(${JSON.stringify(join(ROOT, 'src/action/main.ts'))});
      const spec = { name: 'T1' };
      const attempt = { attempt: 1, status: 'fail', reason: ${JSON.stringify(EVIL.join(' / '))}, durations: { vmSeconds: 1, collectSeconds: 0 } };
      await main(process.env, {
        run: async ({ ui }) => {
          ui.planned([spec]);
          ui.info(${JSON.stringify(`image: mkosi said\n${EVIL.join('\n')}`)});
          ui.warn(${JSON.stringify(EVIL[2])});
          ui.testStart(spec, 1, ['mkosi', '--machine=itest-t1-abcdef-1', 'vm']);
          ui.testEnd(spec, attempt, false);
          return undefined;
        },
      });`;
    const r = await runStep({
      argv: ['--import', 'tsx', '--input-type=module', '-e', code],
      cwd: ROOT,
      env: { ...cleanEnv() },
      inputs: { config: DEMO, 'setup-runner': 'false' },
      prepare: (dir) => ({ INPUT_OUTPUT: join(dir, 'out'), RUNNER_TEMP: dir }),
    });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /\[1\/1\] FAIL {3}T1 {2}1\.0 s {2}::add-mask::PWNED-mask/);
    assert.match(r.stdout, /^warning: ::error title=PWNED::PWNED-error$/m);
    assert.deepEqual(
      guestCommands(r.stdout).map((c) => c.line),
      [],
    );
  });
});

/** `md` without its fenced code blocks (CommonMark: closed by a fence of the same kind, at least as long). */
function outsideCode(md: string): { text: string; blocks: string[][] } {
  const text: string[] = [];
  const blocks: string[][] = [];
  let fence: string | undefined;
  for (const line of md.split('\n')) {
    if (fence === undefined) {
      const m = /^ {0,3}(`{3,}|~{3,})/.exec(line);
      if (m) {
        fence = m[1]!;
        blocks.push([]);
      } else text.push(line);
    } else if (new RegExp(`^ {0,3}\\${fence[0]}{${fence.length},}\\s*$`).test(line)) fence = undefined;
    else blocks.at(-1)!.push(line);
  }
  assert.equal(fence, undefined, 'every fence is closed');
  return { text: text.join('\n'), blocks };
}

/** Cell separators of a table row: the pipes no backslash escapes. */
const cells = (row: string) => row.split(/(?<!\\)\|/).length - 2;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe('10. the job summary and the terminal report escape guest text', () => {
  const hostile = testResult('B', 'fail', {
    reason: 'exit <b>1</b> & <img src=x onerror=alert(1)> | `code` \x1b[31mred\x1b[0m \u202eevil',
    outputTail: ['```', '</details><img src=y>', '~~~', 'bell\x07 nul\x00 cr\r end', '`` two ticks'],
    digest: digest({
      subtests: [{ name: '<script>x</script>|pipe', result: 'fail', message: '[link](http://e.x) *bold*' }],
    }),
  });
  const r = results([testResult('A', 'pass'), hostile]);

  it('summary: & < > as entities, no tag or link opens, cells and fences hold, lines verbatim inside, no control characters', () => {
    const md = renderSummary(r, { downloadDir: 'itest-logs' });
    assert.doesNotMatch(md, CONTROL);
    const { text, blocks } = outsideCode(md);
    for (const tag of ['<img', '<script', '<b>1'])
      assert.ok(!text.includes(tag), `${tag} outside code in:\n${text}`);
    assert.doesNotMatch(text, /(?<!\\)\]\(http/, 'no link');
    assert.equal(text.split('</details>').length - 1, 1, 'one details block, the one failure');
    assert.match(
      text,
      /<summary>❌ <b>B<\/b>: exit &lt;b&gt;1&lt;\/b&gt; &amp; &lt;img src=x onerror=alert\(1\)&gt; \| `code` red evil<\/summary>/,
    );
    const row = text.split('\n').find((l) => l.startsWith('| ❌ | B |'))!;
    assert.equal(cells(row), 5, row);
    const sub = text.split('\n').find((l) => l.includes('↳'))!;
    assert.equal(cells(sub), 5, sub);
    assert.match(sub, /↳ &lt;script&gt;x&lt;\/script&gt;\\\|pipe/);
    assert.match(sub, /\\\[link\\\]\(http\\:\/\/e\.x\) \\\*bold\\\*/, 'no link, no autolink, no emphasis');
    // The unit's lines arrive whole, in a block of their own that none of them could close.
    const last = blocks.find((b) => b.includes('</details><img src=y>'));
    assert.deepEqual(last, ['```', '</details><img src=y>', '~~~', 'bell nul cr end', '`` two ticks']);
  });

  it('post step: a status line the guest wrote stays inside its code span and its table cell', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-post-evil-'));
    const out = join(dir, 'out');
    await mkdir(join(out, '.work/T'), { recursive: true });
    await writeFile(join(out, '.work/T/status'), 'SERVICE_RESULT=`x` <img src=z> | EXIT_STATUS=1\x1b[2J\n');
    const summary = join(dir, 'summary.md');
    await writeFile(summary, '');
    const post = await collect(
      spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/action/post-entry.ts')], {
        cwd: dir,
        env: {
          ...cleanEnv(),
          STATE_output: out,
          GITHUB_STEP_SUMMARY: summary,
          'INPUT_UPLOAD-LOGS': 'none',
          INPUT_CONFIG: DEMO,
        },
      }),
    );
    assert.equal(post.code, 0, post.stderr);
    const md = await readFile(summary, 'utf8');
    assert.doesNotMatch(md, CONTROL);
    const row = md.split('\n').find((l) => l.startsWith('| T |'))!;
    assert.equal(row, '| T | the guest had reported ``SERVICE_RESULT=`x` <img src=z> \\| EXIT_STATUS=1`` |');
    assert.equal(cells(row), 2);
  });

  it('code spans hold any run of backticks', () => {
    for (const s of ['a`b', '``x``', '`lead', 'trail`', 'a ``` b', 'plain']) {
      const span = codeSpan(s);
      const tick = /^`+/.exec(span)![0];
      assert.ok(span.endsWith(tick), span);
      let inner = span.slice(tick.length, -tick.length);
      // CommonMark strips one space on each side when both are there.
      if (inner.startsWith(' ') && inner.endsWith(' ') && inner.trim()) inner = inner.slice(1, -1);
      assert.equal(inner, s, span);
      assert.ok(
        !(inner.match(/`+/g) ?? []).some((run) => run.length === tick.length),
        `${span} closes early`,
      );
    }
  });

  it('terminal report and progress lines: every control character but the newline is gone', () => {
    const text = renderReport(r);
    assert.doesNotMatch(text, CONTROL);
    assert.match(text, /exit <b>1<\/b> & <img src=x onerror=alert\(1\)> \| `code` red evil/);
    assert.match(text, /\n {6}bell nul cr end\n/);
    const line = progressEnd(
      'B',
      { ...hostile.attempts[0]!, reason: 'x\x1b]0;title\x07\ry\u202e' },
      false,
      1,
      1,
    );
    assert.doesNotMatch(line, CONTROL);
    assert.equal(line, '[1/1] FAIL   B  40.0 s  x]0;titley');
  });
});

describe('11. image cache saves: an allowlist of events (real @actions/cache, local services)', () => {
  const saved: NodeJS.ProcessEnv = {};
  let work = '';
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'itest-save-policy-'));
    for (const [k, v] of Object.entries({ ...services.env(), GITHUB_WORKSPACE: work })) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    saved.GITHUB_SERVER_URL = process.env.GITHUB_SERVER_URL;
    delete process.env.GITHUB_SERVER_URL;
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  const repo = (name: string) => ({ repo: { full_name: name } });
  const same = { pull_request: { head: repo('o/r'), base: repo('o/r') } };
  const fork = { pull_request: { head: repo('evil/r'), base: repo('o/r') } };
  const cases: [event: string, ref: string, payload: object, saves: boolean][] = [
    ['push', 'refs/heads/main', {}, true],
    ['schedule', 'refs/heads/main', {}, true],
    ['workflow_dispatch', 'refs/heads/feature', {}, true],
    ['merge_group', 'refs/heads/gh-readonly-queue/main/pr-7-abc', {}, true],
    ['pull_request', 'refs/pull/7/merge', same, true],
    ['pull_request_review', 'refs/pull/7/merge', same, true],
    ['pull_request_review_comment', 'refs/pull/7/merge', same, true],
    ['pull_request', 'refs/pull/7/merge', fork, false],
    ['pull_request_review', 'refs/pull/7/merge', fork, false],
    ['pull_request_target', 'refs/heads/main', same, false],
    ['workflow_run', 'refs/heads/main', {}, false],
    ['issue_comment', 'refs/heads/main', {}, false],
    ['repository_dispatch', 'refs/heads/main', {}, false],
    ['release', 'refs/tags/v1', {}, false],
    ['push', 'refs/tags/v1', {}, false],
    ['workflow_dispatch', 'refs/tags/v1', {}, false],
  ];
  for (const [i, [event, ref, payload, saves]] of cases.entries()) {
    const from = payload === fork ? ' from a fork' : payload === same ? ' from the repository' : '';
    it(`${event} on ${ref}${from}: ${saves ? 'saves' : 'restores only'}`, async () => {
      const eventPath = join(work, `event-${i}.json`);
      await writeFile(eventPath, JSON.stringify(payload));
      const gh = readContext({
        GITHUB_EVENT_NAME: event,
        GITHUB_REF: ref,
        GITHUB_EVENT_PATH: eventPath,
        RUNNER_TEMP: join(work, `temp-${i}`),
      });
      const warnings: string[] = [];
      const stored: string[] = [];
      const cache = jobImageCache(gh, join(work, 'out'), (w) => warnings.push(w), {
        onSaved: (k) => stored.push(k),
        saveSeconds: 60,
      });
      const dir = await cache.buildDir();
      await writeFile(join(dir, 'image.raw'), `image ${i}`);
      const calls = services.calls.length;
      await cache.save(`itest-image-policy-${i}`, dir);
      const created = services.calls.slice(calls).includes('twirp CreateCacheEntry');
      assert.equal(created, saves, warnings.join('\n'));
      assert.deepEqual(stored, saves ? [`itest-image-policy-${i}`] : []);
      if (!saves) assert.match(warnings.join('\n'), /not saving the image to the Actions cache: /);
    });
  }
});

// --- The workflows -------------------------------------------------------------------------------

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  permissions?: Record<string, string> | string;
  steps: Step[];
}
interface Workflow {
  permissions?: Record<string, string> | string;
  jobs: Record<string, Job>;
}
const workflows = async (): Promise<Record<string, Workflow>> => {
  const dir = join(ROOT, '.github/workflows');
  const out: Record<string, Workflow> = {};
  for (const f of (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)))
    out[f] = parse(await readFile(join(dir, f), 'utf8')) as Workflow;
  return out;
};
const steps = (wfs: Record<string, Workflow>) =>
  Object.entries(wfs).flatMap(([f, wf]) =>
    Object.entries(wf.jobs).flatMap(([j, job]) => job.steps.map((s) => ({ where: `${f} ${j}`, s }))),
  );

/** Runs a step's script as the runner runs `shell: bash`, with `env`; PATH first looks in `bin`. */
async function runScript(script: string, env: Record<string, string>, bin?: string) {
  const dir = await mkdtemp(join(tmpdir(), 'itest-wf-step-'));
  const file = join(dir, 'step.sh');
  await writeFile(file, script);
  return collect(
    spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', file], {
      env: { PATH: `${bin ? `${bin}:` : ''}${process.env.PATH}`, ...env },
    }),
  );
}

describe('12. the workflows', async () => {
  const wfs = await workflows();
  const reusable = wfs['itest.yml']!;

  it('every checkout keeps no credentials in the workspace', () => {
    const checkouts = steps(wfs).filter(({ s }) => s.uses?.startsWith('actions/checkout@'));
    assert.ok(checkouts.length >= 5);
    for (const { where, s } of checkouts) assert.equal(s.with?.['persist-credentials'], false, where);
  });

  it('ci.yml asks for no write permission (caches and artifacts use the runtime token)', () => {
    const ci = wfs['ci.yml']!;
    const grants = [ci.permissions, ...Object.values(ci.jobs).map((j) => j.permissions)];
    for (const g of grants) {
      if (g === undefined) continue;
      assert.notEqual(g, 'write-all');
      assert.deepEqual(
        Object.entries(typeof g === 'string' ? {} : g).filter(([, v]) => v === 'write'),
        [],
      );
    }
  });

  it('no run: script holds a ${{ }} expression: values reach the shell through env:', () => {
    for (const { where, s } of steps(wfs)) if (s.run) assert.ok(!s.run.includes('${{'), `${where}: ${s.run}`);
  });

  it('the reusable workflow uses the current majors of actions/checkout, cache and the artifact actions', () => {
    const current: Record<string, string> = {
      'actions/checkout': 'v7',
      'actions/cache': 'v6',
      'actions/cache/restore': 'v6',
      'actions/cache/save': 'v6',
      'actions/upload-artifact': 'v7',
      'actions/download-artifact': 'v8',
    };
    const used = steps({ 'itest.yml': reusable }).flatMap(({ s }) => (s.uses ? [s.uses] : []));
    const pinned = used.filter((u) => u.split('@')[0]! in current);
    assert.ok(pinned.length >= 6, used.join(' '));
    for (const u of pinned) assert.equal(u.split('@')[1], current[u.split('@')[0]!], u);
  });

  for (const job of ['prepare', 'test'])
    it(`${job} job: the packages input fails its check unless it is Debian package names, and apt-get gets \`--\` before it`, async () => {
      const js = reusable.jobs[job]!.steps;
      const check = js.find((s) => s.name === 'check the packages input');
      const install = js.find((s) => s.name === 'host tools');
      assert.ok(check?.run && install?.run, 'a check step and the install step');
      assert.ok(js.indexOf(check) < js.indexOf(install), 'the check runs first');
      assert.equal(check.env?.PACKAGES, '${{ inputs.packages }}');
      for (const ok of ['', 'libfoo-dev', 'g++ python3.11 lib32z1', 'a0\nb+c  d.e\n'])
        assert.equal((await runScript(check.run, { PACKAGES: ok })).code, 0, JSON.stringify(ok));
      for (const bad of [
        '-o APT::Get::AllowUnauthenticated=true foo',
        '--allow-unauthenticated',
        'foo -y',
        'foo;id',
        '$(id)',
        '*',
        '../evil.deb',
        'Foo',
        'x',
        'foo=1.0',
        'foo\n--reinstall',
      ]) {
        const r = await runScript(check.run, { PACKAGES: bad });
        assert.notEqual(r.code, 0, JSON.stringify(bad));
        assert.match(r.stderr, /is not a Debian package name/);
      }
      // The install step on its own, with a stand-in sudo that records what it is asked to run.
      const bin = await mkdtemp(join(tmpdir(), 'itest-sudo-'));
      const log = join(bin, 'calls');
      await writeFile(
        join(bin, 'sudo'),
        `#!${process.execPath}\nrequire('node:fs').appendFileSync(process.env.SUDO_LOG, JSON.stringify(process.argv.slice(2)) + '\\n');\n`,
      );
      await chmod(join(bin, 'sudo'), 0o755);
      const r = await runScript(
        install.run,
        { PACKAGES: 'foo\n-o APT::X=1 *', SUDO_LOG: log, HOME: bin },
        bin,
      );
      assert.equal(r.code, 0, r.stderr);
      const calls = (await readFile(log, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as string[]);
      const apt = calls.find((c) => c[1] === 'install')!;
      const dashes = apt.indexOf('--');
      assert.ok(dashes > 0 && dashes < apt.indexOf('qemu-system-x86'), apt.join(' '));
      assert.deepEqual(apt.slice(-4), ['foo', '-o', 'APT::X=1', '*'], 'one word each, no glob');
    });
});

// --- The post step ------------------------------------------------------------------------------

describe('13 and 4. the post step stops what this run started, and nothing else', () => {
  const started: number[] = [];
  after(() => {
    for (const p of started)
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // gone
      }
  });

  /** The demo through the mkosi stand-in on its serial channels, the runner left alone, no upload. */
  const STANDIN_INPUTS = {
    INPUT_CONFIG: DEMO,
    INPUT_MKOSI: FAKE,
    INPUT_TRANSPORT: 'serial',
    'INPUT_SETUP-RUNNER': 'false',
    'INPUT_UPLOAD-LOGS': 'none',
  };

  /** A process that only sleeps, whose argv[0] says `name` (what /proc shows the post step). */
  const decoy = (name: string) => {
    const c = spawn('sleep', ['1000'], { stdio: 'ignore', argv0: name });
    started.push(c.pid!);
    return c.pid!;
  };

  /**
   * The main step until `ready` finds what it waits for among its descendants, then SIGKILL (no signal
   * handler runs, as when the runner gives up on it); then the post step as the runner starts it.
   */
  async function killMainThenPost(p: {
    dir: string;
    inputs: Record<string, string>;
    env: Record<string, string>;
    plan: string;
    ready: (procs: { pid: number; cmdline: string }[]) => number[] | undefined;
    beforePost?: () => void;
  }) {
    const files = {
      state: join(p.dir, 'state'),
      summary: join(p.dir, 'summary.md'),
      post: join(p.dir, 'post.md'),
    };
    for (const f of Object.values(files)) await writeFile(f, '');
    const base = {
      ...cleanEnv(),
      ...p.inputs,
      ...p.env,
      GITHUB_JOB: 'itest',
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_WORKSPACE: p.dir,
    };
    const main = spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/action/main-entry.ts')], {
      cwd: p.dir,
      env: {
        ...base,
        GITHUB_STATE: files.state,
        GITHUB_OUTPUT: join(p.dir, 'outputs'),
        GITHUB_STEP_SUMMARY: files.summary,
        FAKE_MKOSI_PLAN: p.plan,
        FAKE_MKOSI_STATE: join(p.dir, 'invocations'),
      },
    });
    started.push(main.pid!);
    const mainDone = collect(main);
    let exited = false;
    void mainDone.then(() => (exited = true));
    const tree = await pollFor(
      async () => {
        // Only this main step's processes: other test files run the same stand-in at the same time.
        const ps = await listProcesses();
        const mine = withDescendants(ps, [main.pid!]);
        const roots = p.ready(ps.filter((x) => x.pid !== main.pid && mine.has(x.pid)));
        if (!roots) return undefined;
        const all = [...roots, ...(await Promise.all(roots.map(descendants))).flat()];
        started.push(...all);
        // Each stand-in mkosi has its grandchild (a sleep in its own session) once it hangs.
        return all.length === 2 * roots.length ? all : undefined;
      },
      { seconds: 120, stop: () => exited },
    );
    // Whatever came up is stopped at the end, even when the test fails here.
    if (!tree) started.push(...(await descendants(main.pid!)));
    main.kill('SIGKILL');
    const m = await mainDone;
    assert.ok(tree, `what the test waits for did not come up; main said:\n${m.stdout}\n${m.stderr}`);
    for (const pid of tree) assert.equal(await isGone(pid), false, `${pid} outlives the main step`);
    p.beforePost?.();
    const state = stateEnv(await readFile(files.state, 'utf8'));
    const post = await collect(
      spawn(process.execPath, ['--import', TSX, join(ROOT, 'src/action/post-entry.ts')], {
        cwd: p.dir,
        env: { ...base, ...state, GITHUB_STEP_SUMMARY: files.post },
      }),
    );
    assert.equal(post.code, 0, post.stderr);
    return { tree, post, state, summary: await readFile(files.post, 'utf8') };
  }

  it('output: . (the workspace): the VMs and their descendants are stopped; workspace processes naming it are not', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-post-dot-'));
    const temp = await mkdtemp(join(tmpdir(), 'itest-post-dot-temp-'));
    // Started before the run (a dev server of an earlier step), and during it (another run's VM in this
    // workspace): both name the output directory, neither is this run's.
    const before = decoy(`${dir}/node_modules/.bin/dev-server --log ${dir}/server.log`);
    let during = 0;
    const r = await killMainThenPost({
      dir,
      inputs: { ...STANDIN_INPUTS, INPUT_CACHE: 'false', INPUT_OUTPUT: '.', INPUT_JOBS: '2' },
      env: { RUNNER_TEMP: temp },
      plan: 'exit:0,hang',
      ready: (ps) => {
        const vms = ps
          .filter((p) => p.cmdline.includes(FAKE) && p.cmdline.includes(' vm '))
          .map((p) => p.pid);
        return vms.length === 2 ? vms : undefined;
      },
      beforePost: () => {
        during = decoy(
          `mkosi --machine=itest-test-01-basic-ffffff-1 vm -chardev file,id=itest-status,path=${dir}/.work/TEST-01-BASIC/status`,
        );
      },
    });
    assert.match(r.post.stdout, /^post: stopped 4 leftover process\(es\) of 2 VM\(s\): itest-test-0[13]-/m);
    for (const pid of r.tree) assert.ok(await isGone(pid), `leftover ${pid} stopped`);
    assert.equal(await isGone(before), false, 'a process from before the run survives');
    assert.equal(await isGone(during), false, 'a process the run did not start survives');
    assert.match(r.summary, /^\| TEST-01-BASIC \| was running; its VM was stopped by the post step \|$/m);
  });

  it('a cancelled image build (Actions cache: the image in RUNNER_TEMP, not under output) is found and stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-post-build-'));
    const temp = await mkdtemp(join(tmpdir(), 'itest-post-build-temp-'));
    const callsBefore = services.calls.length;
    const r = await killMainThenPost({
      dir,
      inputs: { ...STANDIN_INPUTS, INPUT_OUTPUT: 'itest-results' },
      env: { ...services.env(), RUNNER_TEMP: temp, GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/heads/main' },
      plan: 'hang',
      ready: (ps) => {
        const build = ps
          .filter((p) => p.cmdline.includes(FAKE) && / build$/.test(p.cmdline.trimEnd()))
          .map((p) => p.pid);
        return build.length === 1 ? build : undefined;
      },
    });
    assert.match(r.state.STATE_started!, new RegExp(`^${temp}/itest-started-\\d+\\.jsonl$`));
    assert.match(r.post.stdout, /^post: stopped 2 leftover process\(es\) of 0 VM\(s\) and the image build$/m);
    for (const pid of r.tree) assert.ok(await isGone(pid), `build process ${pid} stopped`);
    assert.match(r.summary, /stopped 0 leftover VM\(s\) and the image build \(2 processes\)/);
    const calls = services.calls.slice(callsBefore);
    assert.ok(calls.includes('twirp GetCacheEntryDownloadURL'), 'the image was looked up');
    assert.ok(!calls.includes('twirp CreateCacheEntry'), 'nothing saved');
  });
});

describe('15. runner setup leaves self-hosted runners alone unless asked', () => {
  const action = parse(readFileSync(join(ROOT, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: string }>;
  };
  const defaults = Object.fromEntries(Object.entries(action.inputs).map(([k, v]) => [k, v.default ?? '']));

  /** readyRunner on a runner whose devices are closed and whose user namespaces are restricted. */
  async function setUp(runnerEnvironment: string | undefined, setupRunner?: string) {
    const inputs: Record<string, string> = { ...defaults, config: DEMO };
    if (setupRunner !== undefined) inputs['setup-runner'] = setupRunner;
    const cfg = parseInputs(
      (n) => inputs[n] ?? '',
      { runAttempt: '1', ...(runnerEnvironment ? { runnerEnvironment } : {}) },
      {},
      ROOT,
    );
    const ran: string[] = [];
    const log: string[] = [];
    await readyRunner(
      cfg,
      (l) => log.push(l),
      { vms: true },
      {
        run: async (argv) => (ran.push(argv.join(' ')), { code: 0, signal: null, stdout: '', stderr: '' }),
        root: false,
        read: async () => '1',
        check: async () => 'permission denied (mode 0660, owner 0:993)',
      },
    );
    return { ran, log: log.join('\n') };
  }

  it('auto (the default): a GitHub-hosted runner is set up; a self-hosted one, or an unknown one, is left as it is', async () => {
    assert.equal(defaults['setup-runner'], 'auto');
    const hosted = await setUp('github-hosted');
    assert.ok(
      hosted.ran.includes('sudo -n sysctl --ignore --write kernel.apparmor_restrict_unprivileged_userns=0'),
    );
    assert.ok(hosted.ran.includes('sudo -n chmod 0666 /dev/kvm'), hosted.ran.join('\n'));
    for (const env of ['self-hosted', undefined]) {
      const self = await setUp(env);
      assert.deepEqual(self.ran, [], `${env}: nothing changed`);
      assert.match(self.log, /not GitHub-hosted .*left as they are.*setup-runner: true/);
    }
  });

  it('true sets up a self-hosted runner too, false never; other values are an error naming the input', async () => {
    assert.ok((await setUp('self-hosted', 'true')).ran.includes('sudo -n chmod 0666 /dev/vhost-vsock'));
    assert.deepEqual((await setUp('github-hosted', 'false')).ran, []);
    await assert.rejects(
      setUp('self-hosted', 'sometimes'),
      /input `setup-runner`: "sometimes" is not one of auto, true, false/,
    );
  });
});

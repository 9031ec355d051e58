/**
 * Issue 13, item 9: the terminal. The live status line and the heartbeat as pure functions of what runs
 * and a clock; the mode from TTY, TERM, CI and NO_COLOR; progressUi's heartbeat with a short interval;
 * and the real CLI with the mkosi stand-in on a pseudo-terminal (python3's pty module, argv only:
 * test/helpers/pty-run.py), piped, and with NO_COLOR.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildNews,
  clip,
  elapsed,
  heartbeatLine,
  liveStatus,
  terminalMode,
  type Activity,
} from '../../src/results/live-status.ts';
import { progressUi } from '../../src/engine/progress.ts';
import { LiveLine } from '../../src/cli/live-line.ts';
import { ansiPaint, noPaint, progressEnd } from '../../src/results/terminal.ts';
import { testSpec } from '../helpers/spec.ts';
import { testResult } from '../helpers/results.ts';
import { ROOT, TSX, standinRunArgs } from '../helpers/run-tree.ts';

const ESC = '\x1b';
/** Escapes made visible, to match them. */
const shown = (s: string) => s.replaceAll(ESC, '<ESC>');
const idle: Activity = { running: [], done: 0, total: 3 };
const two: Activity = {
  running: [
    { name: 'TEST-01-BASIC', attempt: 1, sinceMs: 0 },
    { name: 'TEST-02-NET', attempt: 2, sinceMs: 58_000 },
  ],
  done: 1,
  total: 3,
};
const building = (lastLine?: string): Activity => ({
  running: [],
  done: 0,
  total: 3,
  build: { sinceMs: 1000, ...(lastLine !== undefined ? { lastLine } : {}) },
});

describe('live line and heartbeat: pure functions of the activity and a clock', () => {
  const cases: [string, Activity, number, string][] = [
    ['nothing runs: no line', idle, 5000, ''],
    [
      'the running tests with their elapsed time, retries marked',
      two,
      65_000,
      '[1/3] running 2: TEST-01-BASIC 1m05s, TEST-02-NET #2 7s',
    ],
    ['a build without a line yet', building(), 43_500, 'building image 42s'],
    [
      "a build and mkosi's last line",
      building('‣ Installing packages'),
      3_601_000,
      'building image 1h00m  ‣ Installing packages',
    ],
    [
      'escapes from a name or a build line never reach the terminal',
      { running: [{ name: 'X\x1b[2J\u202e', attempt: 1, sinceMs: 0 }], done: 0, total: 1 },
      1000,
      '[0/1] running 1: X 1s',
    ],
  ];
  for (const [name, a, now, want] of cases)
    it(`liveStatus: ${name}`, () => assert.equal(liveStatus(a, now), want));

  const beats: [Activity, number, string | undefined][] = [
    [idle, 60_000, undefined],
    [two, 125_000, '[1/3] still running 2: TEST-01-BASIC 2m05s, TEST-02-NET #2 1m07s'],
    [
      building('‣ Running finalize script'),
      61_000,
      'still building the image (1m00s); last line: ‣ Running finalize script',
    ],
    [building(), 2000, 'still building the image (1s)'],
  ];
  for (const [a, now, want] of beats)
    it(`heartbeatLine at ${now} ms: ${want ?? 'none'}`, () => assert.equal(heartbeatLine(a, now), want));

  const clips: [string, number, string][] = [
    ['short', 80, 'short'],
    ['exactly nine', 10, 'exactly …'],
    ['abcdefghij', 11, 'abcdefghij'],
    ['‣ ünïcode counts code points', 8, '‣ ünïc…'],
    ['x', 0, 'x'],
  ];
  for (const [s, cols, want] of clips)
    it(`clip(${JSON.stringify(s)}, ${cols}) leaves the last column free`, () =>
      assert.equal(clip(s, cols), want));

  const times: [number, string][] = [
    [0, '0s'],
    [59_999, '59s'],
    [60_000, '1m00s'],
    [3_599_000, '59m59s'],
    [7_260_000, '2h01m'],
    [-5, '0s'],
  ];
  for (const [ms, want] of times) it(`elapsed(${ms}) = ${want}`, () => assert.equal(elapsed(ms), want));

  const news: [string | undefined, string, string | undefined][] = [
    [undefined, 'Reading config', 'Reading config'],
    ['Reading config', '‣ Building default image', '‣ Building default image'],
    [
      '‣ Building default image',
      'Get:1 http://deb.debian.org bookworm InRelease',
      '‣ Building default image',
    ],
    ['‣ A', '   ', '‣ A'],
    [undefined, '\x1b[1m‣ Bold step\x1b[0m', '‣ Bold step'],
  ];
  for (const [prev, line, want] of news)
    it(`buildNews keeps mkosi's last ‣ line: ${JSON.stringify(line)}`, () =>
      assert.equal(buildNews(prev, line), want));
});

describe('terminal mode: TTY, TERM, CI and NO_COLOR', () => {
  const cases: [string, boolean, NodeJS.ProcessEnv, { live: boolean; color: boolean; heartbeat: boolean }][] =
    [
      ['a terminal', true, { TERM: 'xterm-256color' }, { live: true, color: true, heartbeat: false }],
      [
        'NO_COLOR=1: the live line, no colour',
        true,
        { NO_COLOR: '1' },
        { live: true, color: false, heartbeat: false },
      ],
      [
        'NO_COLOR empty counts as unset',
        true,
        { NO_COLOR: '' },
        { live: true, color: true, heartbeat: false },
      ],
      ['piped: plain, with a heartbeat', false, {}, { live: false, color: false, heartbeat: true }],
      ['piped in CI', false, { CI: 'true' }, { live: false, color: false, heartbeat: true }],
      [
        'a terminal in CI: colour, but lines and heartbeats',
        true,
        { CI: 'true' },
        { live: false, color: true, heartbeat: true },
      ],
      ['CI=false is no CI', true, { CI: 'false' }, { live: true, color: true, heartbeat: false }],
      [
        'TERM=dumb cannot erase a line',
        true,
        { TERM: 'dumb' },
        { live: false, color: false, heartbeat: true },
      ],
    ];
  for (const [name, tty, env, want] of cases) it(name, () => assert.deepEqual(terminalMode(tty, env), want));
});

/** Polls until `done` holds (10 s at most). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('progressUi: the live line and the heartbeat', () => {
  const spec = (name: string) => testSpec({ name });
  const attempt = (status: 'pass' | 'fail') => testResult('A', status).attempts[0]!;

  it('a live line follows the running tests and the build; nothing but the events prints', () => {
    let clock = 0;
    const drawn: string[] = [];
    const printed: string[] = [];
    const ui = progressUi(
      (l) => printed.push(l),
      () => {},
      {
        live: { status: (t) => drawn.push(t) },
        now: () => clock,
      },
    );
    ui.planned([spec('A'), spec('B')]);
    ui.buildStart!(['mkosi', 'build'], '/out/image-build.log');
    clock = 5000;
    ui.buildLine!('‣ Installing packages');
    ui.buildLine!('Get:1 http://example.org');
    ui.buildEnd!(true, 5);
    ui.testStart(spec('A'), 1, ['mkosi']);
    clock = 12_000;
    ui.testEnd(spec('A'), attempt('pass'), false);
    assert.deepEqual(drawn, [
      'building image 0s',
      'building image 5s  ‣ Installing packages',
      '',
      '[0/2] running 1: A 0s',
      '',
    ]);
    assert.deepEqual(printed, ['[0/2] start  A  (1 running)', '[1/2] PASS   A  40.0 s  pass reason']);
  });

  it('plain output: a heartbeat after the interval without a line, while anything runs; none after', async () => {
    const printed: string[] = [];
    let clock = 0;
    const ui = progressUi(
      (l) => printed.push(l),
      () => {},
      { heartbeatMs: 40, now: () => clock },
    );
    ui.planned([spec('A')]);
    ui.testStart(spec('A'), 1, ['mkosi']);
    clock = 61_000;
    // Until two beats came (a loaded machine delays timers): each one re-arms the next.
    await until(() => printed.filter((l) => l.includes('still running')).length >= 2);
    const beats = printed.filter((l) => l.includes('still running'));
    assert.ok(beats.length >= 2, printed.join('\n'));
    assert.equal(beats[0], '[0/1] still running 1: A 1m01s');
    ui.testEnd(spec('A'), attempt('fail'), false);
    const after = printed.length;
    ui.buildStart!(['mkosi'], 'log');
    ui.buildLine!('‣ Building');
    await until(() => printed.length > after);
    assert.ok(
      printed.slice(after).includes('still building the image (0s); last line: ‣ Building'),
      printed.join('\n'),
    );
    ui.buildEnd!(true, 1);
    const ended = printed.length;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(printed.length, ended, 'no heartbeat once nothing runs');
  });

  it('the action and a pipe get no escapes: no paint, no live line', () => {
    const line = progressEnd('A', attempt('fail'), false, 1, 1, noPaint);
    assert.ok(!line.includes(ESC));
    assert.equal(
      progressEnd('A', attempt('fail'), false, 1, 1, ansiPaint),
      `[1/1] ${ESC}[31mFAIL${ESC}[0m   A  40.0 s  fail reason`,
    );
  });
});

describe('LiveLine: the status line is erased before any other output, clipped to the width', () => {
  const fakeTty = (columns: number) => {
    const writes: string[] = [];
    return {
      writes,
      tty: { columns, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream,
    };
  };

  it('draws in place, erases before a line (on stdout or stderr), redraws after, erases at the end', () => {
    const { writes, tty } = fakeTty(12);
    const err: string[] = [];
    const stderr = {
      write: (s: string) => err.push(`${writes.length}:${s}`),
    } as unknown as NodeJS.WritableStream;
    const live = new LiveLine(tty);
    live.status('[0/1] running 1: A 1s');
    live.status('[0/1] running 1: A 1s'); // unchanged: not redrawn
    live.line(stderr, 'warning: x');
    live.stop();
    assert.deepEqual(writes, ['\r\x1b[K[0/1] runn…', '\r\x1b[K', '\r\x1b[K[0/1] runn…', '\r\x1b[K']);
    assert.deepEqual(err, ['2:warning: x\n'], 'the warning comes after the erase, before the redraw');
  });
});

describe('the real CLI: escapes on a terminal only', () => {
  const args = (out: string) => standinRunArgs({ out });
  const run = async (how: 'tty' | 'pipe', env: NodeJS.ProcessEnv) => {
    const dir = await mkdtemp(join(tmpdir(), 'itest-live-'));
    try {
      const cli = [
        process.execPath,
        '--import',
        TSX,
        join(ROOT, 'src/cli/index.ts'),
        ...args(join(dir, 'out')),
      ];
      const argv = how === 'tty' ? ['python3', join(ROOT, 'test/helpers/pty-run.py'), '60', ...cli] : cli;
      const base = { ...process.env };
      for (const k of ['CI', 'NO_COLOR', 'GITHUB_ACTIONS']) delete base[k];
      const r = spawnSync(argv[0]!, argv.slice(1), {
        cwd: dir,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...base,
          TERM: 'xterm',
          FAKE_MKOSI_STATE: join(dir, 'invocations'),
          FAKE_MKOSI_PLAN: 'exit:0,exit:123',
          FAKE_MKOSI_SERIAL: '1',
          ...env,
        },
      });
      return { code: r.status, out: r.stdout + r.stderr };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const SGR = new RegExp(`${ESC}\\[\\d+m`);

  it('on a terminal: the status line drawn in place, clipped to 60 columns, coloured verdicts', async () => {
    const r = await run('tty', {});
    assert.equal(r.code, 1, r.out); // TEST-03 should fail, the stand-in passes it
    assert.match(shown(r.out), /\r<ESC>\[K\[\d\/3\] running \d: TEST-/);
    assert.match(r.out, new RegExp(`\\[\\d/3\\] ${ESC}\\[32mPASS${ESC}\\[0m +TEST-01-BASIC`));
    assert.match(r.out, new RegExp(`  ${ESC}\\[31mFAIL${ESC}\\[0m  TEST-03-EXPECTED-FAIL`));
    // Every status line drawn fits the 60 columns with one to spare.
    for (const m of shown(r.out).matchAll(/\r<ESC>\[K([^\r\n<]*)/g)) assert.ok([...m[1]!].length <= 59, m[1]);
  });

  it('NO_COLOR on a terminal: the status line, but not a single colour', async () => {
    const r = await run('tty', { NO_COLOR: '1' });
    assert.equal(r.code, 1, r.out);
    assert.match(shown(r.out), /\r<ESC>\[K\[\d\/3\] running/);
    assert.doesNotMatch(r.out, SGR);
    assert.match(r.out, /\[\d\/3\] PASS {3}TEST-01-BASIC/);
  });

  it('piped: plain lines, no escape at all', async () => {
    const r = await run('pipe', {});
    assert.equal(r.code, 1, r.out);
    assert.ok(!r.out.includes(ESC), JSON.stringify(r.out.slice(0, 400)));
    assert.match(r.out, /^\[\d\/3\] PASS {3}TEST-01-BASIC/m);
  });
});

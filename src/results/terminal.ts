/**
 * Terminal rendering: live progress lines and the final report. Pure string builders. Much of what they
 * print comes from the guest (unit lines, console tails, subtest names, reasons quoting them), so every
 * builder returns plainText: nothing a guest writes can move the cursor, recolour or rewrite the lines.
 * The only escapes are the verdicts' colours a Paint adds, after the text around them was filtered.
 */
import {
  accelFallbackNote,
  countWords,
  failedTests,
  type Attempt,
  type Results,
  type Status,
  type TestResult,
} from './model.ts';
import { humanBytes } from '../util/size.ts';
import { stripAnsi } from '../util/ansi.ts';
import { findings } from './findings.ts';
import type { HostInfo } from '../host/probe.ts';
import { describeMkosiRuntime } from '../host/mkosi-needs.ts';
import type { HostSetup } from '../host/decide.ts';

/**
 * `s` with escape sequences removed, tabs as spaces, and every other control character dropped but the
 * newline (C0, DEL, C1, and the bidirectional overrides that reorder what a reader sees).
 */
export function plainText(s: string): string {
  return (
    stripAnsi(s)
      .replace(/\t/g, ' ')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g, '')
  );
}

/** What the probe found, printed before anything is built or booted. */
export function renderHost(h: HostInfo, p: HostSetup): string {
  return plainText(
    [
      `host: ${h.arch}, ${h.cpus} CPUs, ${humanBytes(h.memTotal)} (${humanBytes(h.memAvailable)} available)`,
      `  mkosi ${h.mkosi.version} (${p.dialect.name} dialect: ${p.dialect.verb} verb), QEMU ${h.qemu.version}`,
      ...(h.mkosiReady ? [`  mkosi runs under: ${describeMkosiRuntime(h.mkosiReady)}`] : []),
      `  journal: ${h.journalRemote}, ${h.journalctl}${h.journalctlVersion ? ` (systemd ${h.journalctlVersion})` : ''}`,
      `  accel ${p.accel}: ${p.accelDetail}`,
      `  transport ${p.transport}: ${p.transportDetail}`,
    ].join('\n'),
  );
}

const MARK: Record<Status, string> = {
  pass: 'PASS',
  fail: 'FAIL',
  skip: 'SKIP',
  timeout: 'TIME',
  error: 'ERR ',
};

/** Colours a verdict (its mark, OK or FAILED) as `status` reads; noPaint leaves it plain. */
export type Paint = (status: Status, text: string) => string;
export const noPaint: Paint = (_status, text) => text;
const SGR: Record<Status, number> = { pass: 32, fail: 31, timeout: 31, error: 31, skip: 33 };
/** Green passes, red failures, yellow skips (SGR colours; a terminal's only, see live-status.ts terminalMode). */
export const ansiPaint: Paint = (status, text) => `\x1b[${SGR[status]}m${text}\x1b[0m`;

export function progressStart(
  name: string,
  attempt: number,
  running: number,
  done: number,
  total: number,
): string {
  return plainText(
    `[${done}/${total}] start  ${name}${attempt > 1 ? ` (attempt ${attempt})` : ''}  (${running} running)`,
  );
}

export function progressEnd(
  name: string,
  a: Attempt,
  willRetry: boolean,
  done: number,
  total: number,
  paint: Paint = noPaint,
): string {
  const retry = willRetry ? ' -> retrying' : '';
  return `[${done}/${total}] ${paint(a.status, MARK[a.status])}${plainText(
    `   ${name}  ${a.durations.vmSeconds.toFixed(1)} s  ${a.reason}${retry}`,
  )}`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function renderEnvironment(r: Pick<Results, 'environment'>): string {
  const e = r.environment;
  const img = e.image;
  const cacheLine =
    img.cache === 'hit'
      ? `hit (${img.backend}, restored in ${img.restoreSeconds ?? 0} s)`
      : img.cache === 'miss'
        ? `miss (${img.backend}; built in ${img.buildSeconds ?? '?'} s, saved in ${img.saveSeconds ?? '?'} s)`
        : img.cache;
  const accelNote = accelFallbackNote(e);
  return plainText(
    [
      ...(accelNote ? [`WARNING: ${accelNote}`] : []),
      `mkosi      ${e.mkosi.version} (${e.mkosi.dialect}: ${e.mkosi.command.join(' ')})`,
      `qemu       ${e.qemu.version}, accel ${e.accel}: ${e.accelDetail}`,
      `transport  ${e.transport}: ${e.transportDetail}`,
      `host       ${e.host.arch}, ${e.host.cpus} CPUs, ${humanBytes(e.host.memTotal)}; ${e.jobs} VM(s) at once; timeouts x${e.timeoutScale}`,
      `image      ${img.key}: ${cacheLine}`,
    ].join('\n'),
  );
}

/** The report; `paint` colours the verdicts (each line is filtered before any colour is added). */
export function renderReport(r: Results, paint: Paint = noPaint): string {
  const w = Math.max(4, ...r.tests.map((t) => t.name.length));
  const rows = r.tests.flatMap((t) => {
    const att = t.attempts.length > 1 ? ` [${t.attempts.length} attempts${t.flaky ? ', flaky' : ''}]` : '';
    return [
      `  ${paint(t.status, MARK[t.status])}${plainText(`  ${pad(t.name, w)}  ${pad(`${t.timings.totalSeconds.toFixed(1)} s`, 8)}  ${t.reason}${att}`)}`,
      ...(t.digest?.subtests ?? []).map((x) => plainText(`          ↳ ${x.name}: ${x.result}`)),
    ];
  });
  const s = r.summary;
  const failed = failedTests(r);
  const out = ['', 'Results:', ...rows, '', ...renderRepeats(r), ...renderShards(r)];
  for (const t of failed) out.push(...failureBlock(t).map(plainText));
  out.push(plainText(`${s.total} tests: ${countWords(s).join(', ')} in ${r.durationSeconds.toFixed(1)} s`));
  out.push(s.ok ? paint('pass', 'OK') : paint('fail', 'FAILED'));
  return out.join('\n');
}

/** --repeat: each test's pass count, e.g. `TEST-X: 7/10 passed (fail x2, timeout x1)`. */
export function renderRepeats(r: Pick<Results, 'tests'>): string[] {
  const repeated = r.tests.filter((t) => t.repeats);
  if (repeated.length === 0) return [];
  const out = ['Repeats:'];
  for (const t of repeated) {
    const { runs, passed, statuses } = t.repeats!;
    const other = (['fail', 'timeout', 'error', 'skip'] as const)
      .map((s) => [s, statuses.filter((x) => x === s).length] as const)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${s} x${n}`);
    out.push(`  ${t.name}: ${passed}/${runs} passed${other.length ? ` (${other.join(', ')})` : ''}`);
  }
  out.push('');
  return out.map(plainText);
}

/** A failed test's block: reason, findings, the commands to read its logs and rerun it (as printed). */
export function failureBlock(t: TestResult): string[] {
  const out = [`--- ${t.name} (${t.status}): ${t.reason}`];
  for (const f of findings(t)) out.push(`    ${f.title}:`, ...f.lines.slice(-10).map((l) => `      ${l}`));
  if (t.files.journal)
    out.push(`    journal: journalctl --file ${t.files.journal} -u ${t.unit} -o short-monotonic -p info`);
  if (t.files.journal && (t.digest?.coredumps.length ?? 0) > 0)
    out.push(`    dumps:   coredumpctl --file ${t.files.journal} info`);
  if (t.files.console) out.push(`    console: less -R ${t.files.console}`);
  if (t.rerun) out.push(`    rerun:   ${t.rerun}`);
  out.push('');
  return out;
}

/** Merged runs: planned vs actual time per shard, and what the merge found. */
export function renderShards(r: Results): string[] {
  if (!r.shards) return [];
  const out = ['Shards (planned vs actual VM-seconds):'];
  for (const s of r.shards) {
    const att = s.attempt > 1 ? ` (attempt ${s.attempt})` : '';
    out.push(
      s.status === 'missing'
        ? `  ${s.index}/${r.shards.length}  MISSING  ${s.tests.length} test(s) planned, ${s.plannedSeconds} s`
        : `  ${s.index}/${r.shards.length}  ${pad(s.status, 7)}  ${s.tests.length} test(s), planned ${s.plannedSeconds} s, actual ${s.vmSeconds} s, wall ${s.wallSeconds} s${att}`,
    );
  }
  for (const n of r.mergeNotes ?? []) out.push(`  ${n.level}: ${n.message}`);
  out.push('');
  return out.map(plainText);
}

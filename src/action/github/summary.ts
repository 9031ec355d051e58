/**
 * The job summary: counts, environment, a table of tests, a timeline of the VMs and, for each failure,
 * why, its last lines and the commands to debug it. Pure; stays under GitHub's 1 MiB per step. Names,
 * reasons and lines come from the tests and their guests: each goes through the escape for where it
 * lands (markdown.ts).
 */
import {
  accelFallbackNote,
  countWords,
  failedTests,
  type Results,
  type Status,
  type TestResult,
} from '../../results/model.ts';
import { findings } from '../../results/findings.ts';
import { codeBlock, codeSpan, htmlText, mdText } from './markdown.ts';

export const SUMMARY_LIMIT = 1024 * 1024;

const ICON: Record<Status, string> = { pass: '✅', fail: '❌', skip: '⏭️', timeout: '⏱️', error: '💥' };

export interface ReproContext {
  /** `gh run download <run-id> -n <artifact>` needs both; absent outside Actions or without an upload. */
  runId?: string;
  repository?: string;
  artifactName?: string;
  /** Directory the artifact is downloaded into in the printed commands. */
  downloadDir: string;
}

const subtestIcon = (result: string) =>
  /^(pass|ok|success)/i.test(result) ? '✅' : /^skip/i.test(result) ? '⏭️' : '❌';
// A mermaid gantt label ends at `:` and `;` and `#` starts a comment: keep the characters of safe names.
const ganttLabel = (s: string) => s.replace(/[^A-Za-z0-9 _.@+-]/g, ' ');

export function headline(r: Results): string {
  const s = r.summary;
  return `## ${s.ok ? '✅' : '❌'} itest: ${countWords(s).join(' · ')} (${s.total} tests, ${r.durationSeconds.toFixed(0)} s)`;
}

function environment(r: Results): string[] {
  const e = r.environment;
  const img = e.image;
  const cache =
    img.cache === 'hit'
      ? `hit (restored in ${img.restoreSeconds ?? 0} s)`
      : img.cache === 'miss'
        ? `miss (built in ${img.buildSeconds ?? '?'} s, saved in ${img.saveSeconds ?? '?'} s)`
        : img.cache;
  return [
    '| | |',
    '|---|---|',
    `| mkosi | ${mdText(e.mkosi.version)} (${e.mkosi.dialect}) |`,
    `| QEMU | ${mdText(e.qemu.version)} |`,
    `| accelerator | ${mdText(e.accel)}${e.accel === 'tcg' ? ` ⚠️ software emulation${e.accelFallback ? ' (KVM broken on this host)' : ''}` : ''} |`,
    `| transport | ${mdText(e.transport)} |`,
    `| image cache | ${cache}: ${codeSpan(img.key, { cell: true })} |`,
    `| parallelism | ${e.jobs} VM(s) at once on ${e.host.cpus} CPUs; timeouts x${e.timeoutScale} |`,
  ];
}

function table(r: Results): string[] {
  return [
    '| | test | duration | attempts | reason |',
    '|---|---|---:|---:|---|',
    ...r.tests.flatMap((t) => [
      `| ${ICON[t.status]} | ${mdText(t.name)} | ${t.timings.totalSeconds.toFixed(1)} s | ${t.attempts.length}${t.flaky ? ' (flaky)' : ''} | ${mdText(t.reason)} |`,
      // Subtests the test reported (MESSAGE_ID=27479699...), one row each under their test.
      ...(t.digest?.subtests ?? []).map(
        (x) =>
          `| ${subtestIcon(x.result)} | ↳ ${mdText(x.name)} | | | ${mdText(x.result)}: ${mdText(x.message.split('\n')[0] ?? '')} |`,
      ),
    ]),
  ];
}

/** Merged runs: one row per shard with planned vs actual time, then what the merge found. */
export function shardTable(r: Results): string[] {
  if (!r.shards) return [];
  const icon = { ok: '✅', failed: '❌', missing: '💥' } as const;
  const out = [
    `**${r.shards.length} shard(s)**: planned vs actual VM-seconds`,
    '',
    '| | shard | tests | planned | actual | wall | attempt |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...r.shards.map(
      (s) =>
        `| ${icon[s.status]} | ${s.index}/${r.shards!.length}${s.status === 'missing' ? ' (no results)' : ''} | ${s.tests.length} | ${s.plannedSeconds} s | ${s.vmSeconds ?? '–'}${s.vmSeconds !== undefined ? ' s' : ''} | ${s.wallSeconds ?? '–'}${s.wallSeconds !== undefined ? ' s' : ''} | ${s.attempt || '–'} |`,
    ),
    '',
  ];
  for (const n of r.mergeNotes ?? []) out.push(`- ${n.level === 'error' ? '❌' : 'ℹ️'} ${mdText(n.message)}`);
  if (r.mergeNotes?.length) out.push('');
  return out;
}

/** A mermaid gantt of every attempt on the wall clock: shows parallelism, queueing and retries. */
export function timeline(r: Results): string[] {
  const t0 = Date.parse(r.startedAt);
  const rows: string[] = [];
  for (const t of r.tests) {
    for (const a of t.attempts) {
      const start = Math.max(0, Math.round((Date.parse(a.startedAt) - t0) / 1000));
      const dur = Math.max(1, Math.round(a.durations.vmSeconds));
      const tag = a.status === 'pass' || a.status === 'skip' ? 'done' : 'crit';
      const label = ganttLabel(`${t.name}${t.attempts.length > 1 ? ` #${a.attempt}` : ''}`);
      rows.push(`    ${label} :${tag}, ${start}, ${dur}s`);
    }
  }
  if (rows.length === 0) return [];
  return [
    '```mermaid',
    'gantt',
    '    title VMs over time (seconds from the start of the run)',
    '    dateFormat s',
    '    axisFormat %M:%S',
    ...rows,
    '```',
  ];
}

export function reproCommands(t: TestResult, ctx: ReproContext): string[] {
  const base = (f: string | undefined) => (f ? `${ctx.downloadDir}/${f.split('/').pop()}` : undefined);
  const journal = base(t.files.journal);
  const out: string[] = [];
  // Merged runs: each test's logs are in its own shard's artifact.
  const artifact = t.artifact ?? ctx.artifactName;
  if (ctx.runId && artifact) {
    out.push(
      `gh run download ${ctx.runId}${ctx.repository ? ` -R ${ctx.repository}` : ''} -n '${artifact}' -D ${ctx.downloadDir}`,
    );
  }
  if (journal) {
    out.push(`journalctl --file ${journal} -u ${t.unit} -o short-monotonic -p info`);
    out.push(`journalctl --file ${journal} -o short-monotonic   # the whole boot`);
    if ((t.digest?.coredumps.length ?? 0) > 0) out.push(`coredumpctl --file ${journal} info`);
  }
  const consoleLog = base(t.files.console);
  if (consoleLog) out.push(`less -R ${consoleLog}`);
  if (t.rerun) out.push(`${t.rerun}   # locally, same image`);
  return out;
}

export function failureDetails(t: TestResult, ctx: ReproContext): string[] {
  const out = [
    `<details open><summary>${ICON[t.status]} <b>${htmlText(t.name)}</b>: ${htmlText(t.reason)}</summary>`,
    '',
  ];
  const section = (title: string, lines: string[]) => {
    if (lines.length > 0) out.push(`**${title}**`, '', ...codeBlock(lines), '');
  };
  for (const f of findings(t)) section(f.title, f.lines.slice(-20));
  section('debug it', reproCommands(t, ctx));
  out.push('</details>', '');
  return out;
}

/** Renders the summary; when it would pass `limit` bytes, later failure details are dropped with a note. */
export function renderSummary(
  r: Results,
  ctx: ReproContext,
  extra: string[] = [],
  limit = SUMMARY_LIMIT,
): string {
  const accelNote = accelFallbackNote(r.environment);
  const head = [
    headline(r),
    '',
    ...(accelNote ? ['> [!WARNING]', `> ${mdText(accelNote)}`, ''] : []),
    ...environment(r),
    '',
    ...shardTable(r),
    ...table(r),
    '',
    ...timeline(r),
    '',
    ...extra,
  ];
  const failed = failedTests(r);
  let text = head.join('\n');
  if (failed.length > 0) text += '\n\n### Failures\n\n';
  const reserve = 400;
  for (let i = 0; i < failed.length; i++) {
    const block = `${failureDetails(failed[i]!, ctx).join('\n')}\n`;
    if (Buffer.byteLength(text) + Buffer.byteLength(block) + reserve > limit) {
      text += `\n> ⚠️ Summary truncated to stay under GitHub's ${Math.round(limit / 1024)} KiB limit: details of ${failed.length - i} more failure(s) are in results.json and the artifact.\n`;
      break;
    }
    text += block;
  }
  return text;
}

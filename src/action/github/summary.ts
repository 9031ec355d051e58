/**
 * The job summary, reasons first: the verdict, each failure (why, its last lines, what the digest found,
 * the commands to read its logs and rerun it), the artifact, then the table of tests, the timeline of the
 * VMs and the environment. Many passing rows and a big timeline fold into <details>. Pure; stays under
 * GitHub's 1 MiB per step (and the Checks API's 65535 bytes) by dropping, when it must, the least useful
 * parts first: the environment, the timeline, the passing rows, then later failures. Names, reasons and
 * lines come from the tests and their guests: each goes through the escape for where it lands
 * (markdown.ts).
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
import { humanBytes } from '../../util/size.ts';

export const SUMMARY_LIMIT = 1024 * 1024;
/** Above this many passing rows (or timeline bars) they fold into <details>, so a red run's reasons stay in view. */
export const OPEN_ROWS = 10;
/** Lines of a finding quoted, and the characters kept of each (one huge line must not crowd out the rest). */
const FINDING_LINES = 20;
const LINE_WIDTH = 2000;

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
const failing = (t: TestResult) => t.status === 'fail' || t.status === 'timeout' || t.status === 'error';
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const clip = (l: string) => (l.length > LINE_WIDTH ? `${l.slice(0, LINE_WIDTH)}…` : l);

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
    ...(img.base ? [`| base state | ${baseState(img.base)} |`] : []),
    `| parallelism | ${e.jobs} VM(s) at once on ${e.host.cpus} CPUs; timeouts x${e.timeoutScale} |`,
  ];
}

const PARTS: Record<string, string> = {
  cache: "mkosi's cached trees",
  packages: 'packages',
  build: 'build directory',
};

/** --incremental: what the build started from and what was kept, in one table cell. */
export function baseState(b: NonNullable<Results['environment']['image']['base']>): string {
  const key = (k: string) => codeSpan(k, { cell: true });
  const took = (bytes: number, s?: number) => `${humanBytes(bytes)}${s !== undefined ? ` in ${s} s` : ''}`;
  const from =
    b.match === 'fresh'
      ? `fresh (${b.restoreNote ? mdText(b.restoreNote) : 'nothing to start from'})`
      : `restored ${key(b.from ?? b.key)} (${b.match === 'exact' ? 'this base' : 'a near base'}, ${took(b.restoredBytes, b.restoreSeconds)})`;
  const kept = b.notSaved
    ? `not saved: ${mdText(b.notSaved)}`
    : b.savedBytes !== undefined
      ? `saved ${key(b.savedKey ?? b.key)} (${took(b.savedBytes, b.saveSeconds)}${b.savedParts ? `: ${b.savedParts.map((p) => PARTS[p] ?? p).join(', ')}` : ''})`
      : 'not saved';
  return `${from}${b.retriedFromScratch ? '; the build from it failed, the one from scratch was used' : ''} · ${kept}`;
}

const TABLE_HEAD = ['| | test | duration | attempts | reason |', '|---|---|---:|---:|---|'];

/** A test's row, and one row per subtest it reported (MESSAGE_ID=27479699...) under it. */
function rows(t: TestResult): string[] {
  return [
    `| ${ICON[t.status]} | ${mdText(t.name)} | ${t.timings.totalSeconds.toFixed(1)} s | ${t.attempts.length}${t.flaky ? ' (flaky)' : ''} | ${mdText(t.reason)} |`,
    ...(t.digest?.subtests ?? []).map(
      (x) =>
        `| ${subtestIcon(x.result)} | ↳ ${mdText(x.name)} | | | ${mdText(x.result)}: ${mdText(x.message.split('\n')[0] ?? '')} |`,
    ),
  ];
}

/** `body` in a closed <details> (blank lines around it, so GitHub parses the markdown inside). */
const folded = (summary: string, body: string[]) => [
  `<details><summary>${summary}</summary>`,
  '',
  ...body,
  '',
  '</details>',
];

/**
 * The tests: the ones that did not pass first, in one table that stays open; the passing and skipped
 * ones after them, folded when there are more than OPEN_ROWS rows of them.
 */
function table(r: Results): { failingRows: string[]; passingRows: string[] } {
  const bad = r.tests.filter(failing).flatMap(rows);
  const good = r.tests.filter((t) => !failing(t));
  const goodRows = good.flatMap(rows);
  const heading = ['### Tests', ''];
  if (goodRows.length <= OPEN_ROWS)
    return { failingRows: [...heading, ...TABLE_HEAD, ...bad, ...goodRows], passingRows: [] };
  const label = `${good.length} passed or skipped test(s)`;
  return {
    failingRows: bad.length > 0 ? [...heading, ...TABLE_HEAD, ...bad] : [],
    passingRows: [...(bad.length > 0 ? [] : heading), ...folded(label, [...TABLE_HEAD, ...goodRows])],
  };
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

// A mermaid gantt label ends at `:` and `;` and `#` starts a comment: keep the characters of safe names;
// a label that starts with one of the gantt's keywords would be read as that statement.
const GANTT_KEYWORD =
  /^(title|section|dateformat|axisformat|tickinterval|includes|excludes|todaymarker|inclusiveenddates|topaxis|weekday|weekend|click|acctitle|accdescr)\b/i;
function ganttLabel(s: string): string {
  const safe = s.replace(/[^A-Za-z0-9 _.@+-]/g, ' ').trim() || 'test';
  return GANTT_KEYWORD.test(safe) ? `test ${safe}` : safe;
}

/** Seconds as HH:mm:ss: mermaid's `dateFormat s` reads only 0-59, so 125 s would be a date, not an offset. */
const clock = (s: number) =>
  [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');
const DAY = 24 * 3600;

/**
 * A mermaid gantt of every attempt on the wall clock: shows parallelism, queueing and retries. Offsets
 * are times of day (`dateFormat HH:mm:ss`), so the chart covers runs up to a day.
 */
export function timeline(r: Results): string[] {
  const t0 = Date.parse(r.startedAt);
  const bars: { label: string; tag: string; start: number; dur: number }[] = [];
  for (const t of r.tests) {
    for (const a of t.attempts) {
      bars.push({
        label: ganttLabel(`${t.name}${t.attempts.length > 1 ? ` #${a.attempt}` : ''}`),
        tag: a.status === 'pass' || a.status === 'skip' ? 'done' : 'crit',
        start: Math.max(0, Math.round((Date.parse(a.startedAt) - t0) / 1000)),
        dur: Math.max(1, Math.round(a.durations.vmSeconds)),
      });
    }
  }
  if (bars.length === 0) return [];
  const end = Math.max(...bars.map((b) => b.start + b.dur));
  if (end >= DAY) return ['_No timeline: the run lasted more than a day._'];
  const hours = end >= 3600;
  return [
    '```mermaid',
    'gantt',
    `    title VMs over time (${hours ? 'hours:minutes' : 'minutes:seconds'} since the start of the run)`,
    '    dateFormat HH:mm:ss',
    `    axisFormat ${hours ? '%H:%M' : '%M:%S'}`,
    '    todayMarker off',
    ...bars.map((b) => `    ${b.label} :${b.tag}, ${clock(b.start)}, ${b.dur}s`),
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
    if (lines.length > 0) out.push(`**${mdText(title)}**`, '', ...codeBlock(lines.map(clip)), '');
  };
  for (const f of findings(t)) section(f.title, f.lines.slice(-FINDING_LINES));
  section('debug it', reproCommands(t, ctx));
  out.push('</details>', '');
  return out;
}

/**
 * Renders the summary within `limit` bytes. The verdict and `extra` (the artifact, warnings) always
 * stay; failure details come next and are cut, with a note, only when they alone would pass the limit;
 * the parts after them each stay whole or are named in a note as left out.
 */
export function renderSummary(
  r: Results,
  ctx: ReproContext,
  extra: string[] = [],
  limit = SUMMARY_LIMIT,
): string {
  const accelNote = accelFallbackNote(r.environment);
  const head = [headline(r), '', ...(accelNote ? ['> [!WARNING]', `> ${mdText(accelNote)}`, ''] : [])].join(
    '\n',
  );
  const extraText = extra.length > 0 ? `${extra.join('\n')}\n` : '';
  const reserve = 600; // the notes below and the line ends between parts
  const failed = failedTests(r);
  let failures = '';
  if (failed.length > 0) {
    failures = '### Failures\n\n';
    const room = limit - bytes(head) - bytes(extraText) - reserve;
    for (let i = 0; i < failed.length; i++) {
      const block = `${failureDetails(failed[i]!, ctx).join('\n')}\n`;
      if (bytes(failures) + bytes(block) > room) {
        failures += `> ⚠️ Summary truncated to stay under GitHub's ${Math.round(limit / 1024)} KiB limit: details of ${failed.length - i} more failure(s) are in results.json and the artifact.\n\n`;
        break;
      }
      failures += block;
    }
  }
  const { failingRows, passingRows } = table(r);
  const chart = timeline(r);
  const bars = r.tests.reduce((n, t) => n + t.attempts.length, 0);
  const rest: { what: string; lines: string[] }[] = [
    { what: 'the shard table', lines: shardTable(r) },
    { what: 'the table of failed tests', lines: failingRows },
    { what: 'the table of passed tests', lines: passingRows },
    {
      what: 'the timeline',
      lines: bars > OPEN_ROWS && chart.length > 1 ? folded(`Timeline of ${bars} VM(s)`, chart) : chart,
    },
    { what: 'the environment', lines: ['**Environment**', '', ...environment(r)] },
  ];
  let text = `${head}\n${failures}${extraText}`;
  const left: string[] = [];
  for (const part of rest) {
    if (part.lines.length === 0) continue;
    const block = `\n${part.lines.join('\n')}\n`;
    if (bytes(text) + bytes(block) + reserve > limit) left.push(part.what);
    else text += block;
  }
  if (left.length > 0)
    text += `\n> ⚠️ Left out to stay under GitHub's ${Math.round(limit / 1024)} KiB limit: ${left.join(', ')} (results.json has everything).\n`;
  return text;
}

/**
 * The job summary of a 25-test red run, checked with real renderers: the timeline through mermaid in
 * headless Chromium (bar widths, axis labels), the markdown through micromark with GFM (what is a tag, a
 * link, emphasis, a table cell), and the order and size limits through the check run that carries it.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { micromark } from 'micromark';
import { gfm, gfmHtml } from 'micromark-extension-gfm';
import { failureDetails, renderSummary, timeline, OPEN_ROWS } from '../../src/action/github/summary.ts';
import { failedTests } from '../../src/results/model.ts';
import { buildCheckRun, checkAnnotations, OUTPUT_LIMIT } from '../../src/action/github/checks.ts';
import { annotations } from '../../src/action/github/annotations.ts';
import { mdText } from '../../src/action/github/markdown.ts';
import { redRun, digestOf } from '../helpers/red-run.ts';
import { results, testResult } from '../helpers/results.ts';
import { ganttGeometry, renderMermaidSvgs } from '../helpers/mermaid.ts';
import type { Results } from '../../src/results/model.ts';

// Every control character but the newline, and the bidi overrides.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;
const ctx = {
  runId: '42',
  repository: 'systemd/demo',
  artifactName: 'itest-logs-x',
  downloadDir: 'itest-logs',
};
const ARTIFACT = ['📦 Logs of failed tests: artifact `itest-logs-x`', ''];

/** GitHub's pipeline: GFM to HTML with raw HTML kept (its sanitizer runs after, on tags it allows). */
const gfmToHtml = (md: string) =>
  micromark(md, { extensions: [gfm()], htmlExtensions: [gfmHtml()], allowDangerousHtml: true });
const tags = (html: string) => [...html.matchAll(/<([a-zA-Z][\w-]*)/g)].map((m) => m[1]!.toLowerCase());
const decode = (s: string) =>
  s
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&amp;/g, '&');

describe('timeline, rendered by mermaid in Chromium', () => {
  it('bars are as wide as their VMs ran and sit at their start, on runs past a minute and past an hour', async () => {
    const runs = [redRun(), redRun({ hours: true })];
    assert.ok(runs[1]!.durationSeconds > 3600, `${runs[1]!.durationSeconds} s`);
    const t0 = performance.now();
    const svgs = await renderMermaidSvgs(runs.map((r) => timeline(r).slice(1, -1).join('\n')));
    const ms = performance.now() - t0;
    assert.ok(ms < 20_000, `rendering took ${ms.toFixed(0)} ms`);
    for (const [i, r] of runs.entries()) {
      const attempts = r.tests.flatMap((t) => t.attempts);
      const start = (a: (typeof attempts)[number]) =>
        (Date.parse(a.startedAt) - Date.parse(r.startedAt)) / 1000;
      assert.ok(
        attempts.some((a) => start(a) > 60),
        'some tests start after the first minute',
      );
      const { bars, ticks } = ganttGeometry(svgs[i]!);
      assert.equal(bars.length, attempts.length, svgs[i]);
      // Pixels per second, from the longest bar; every bar within rounding (2 px) of its duration.
      const longest = attempts.reduce(
        (m, a, k) => (a.durations.vmSeconds > attempts[m]!.durations.vmSeconds ? k : m),
        0,
      );
      const scale = bars[longest]!.width / attempts[longest]!.durations.vmSeconds;
      const x0 = Math.min(...bars.map((b) => b.x));
      for (const [k, a] of attempts.entries()) {
        const b = bars[k]!;
        assert.ok(b.width > 0, `bar ${k} has no width`);
        assert.ok(
          Math.abs(b.width - a.durations.vmSeconds * scale) <= 2,
          `bar ${k}: ${b.width} px for ${a.durations.vmSeconds} s`,
        );
        assert.ok(
          Math.abs(b.x - x0 - start(a) * scale) <= 2,
          `bar ${k}: x ${b.x} for a start at ${start(a)} s`,
        );
      }
      assert.ok(new Set(ticks).size >= 3, `axis labels: ${ticks.join(' ')}`);
      assert.ok(
        ticks.every((l) => /^\d\d:\d\d$/.test(l)),
        ticks.join(' '),
      );
    }
    // Under an hour minutes:seconds, past it hours:minutes.
    assert.ok(ganttGeometry(svgs[0]!).ticks.includes('10:00'));
    assert.ok(ganttGeometry(svgs[1]!).ticks.includes('01:00'), ganttGeometry(svgs[1]!).ticks.join(' '));
    console.log(`mermaid in Chromium: 2 charts in ${ms.toFixed(0)} ms`);
  });
});

describe('summary of a red run: reasons first', () => {
  const r = redRun();
  const md = renderSummary(r, ctx, ARTIFACT);
  const html = gfmToHtml(md);

  it('verdict, failures with their findings and commands, artifact, tables, timeline, environment', () => {
    const at = (s: string) => {
      const i = md.indexOf(s);
      assert.ok(i >= 0, `${s} missing from:\n${md}`);
      return i;
    };
    const order = [
      at('## ❌ itest: 17 passed · 3 failed · 2 skipped · 2 timed out · 1 errors'),
      at('### Failures'),
      at('<b>TEST-02-NETWORK</b>: exit status 1, expected 123'),
      at('TEST-02-NETWORK: step 3 of 5 failed'),
      at('**failed subtests**'),
      at('<b>TEST-07-CRASH</b>'),
      at('demo-helper.service (core-dump)'),
      at('demo-helper[412] SIGABRT /usr/bin/demo-helper in demo-helper.service'),
      at('coredumpctl --file itest-logs/TEST-07-CRASH.journal info'),
      at('<b>TEST-16-FS</b>'),
      at('journalctl --file itest-logs/TEST-16-FS.journal -u TEST-16-FS.service -o short-monotonic -p info'),
      at('itest run --config . --test TEST-16-FS   # locally, same image'),
      at('📦 Logs of failed tests'),
      at('### Tests'),
      at('| ❌ | TEST-02-NETWORK |'),
      at('<details><summary>19 passed or skipped test(s)</summary>'),
      at('| ✅ | TEST-01-BASIC |'),
      at('```mermaid'),
      at('**Environment**'),
    ];
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
    // Each failure says how to download its logs.
    assert.equal(
      md.split("gh run download 42 -R systemd/demo -n 'itest-logs-x' -D itest-logs").length - 1,
      6,
    );
    // Every failed, timed-out and errored test has its details, the passing ones none.
    for (const t of r.tests)
      assert.equal(md.includes(`<b>${t.name}</b>`), ['fail', 'timeout', 'error'].includes(t.status), t.name);
  });

  it(`folds more than ${OPEN_ROWS} passing rows and the timeline; the failing rows stay open; GFM still sees tables`, () => {
    assert.match(md, /<details><summary>Timeline of 26 VM\(s\)<\/summary>\n\n```mermaid\n/);
    // The open table holds the 6 failing tests and the subtests of one: nothing that passed.
    const open = md.slice(md.indexOf('### Tests'), md.indexOf('<details><summary>19 passed'));
    assert.equal((open.match(/^\| (❌|⏱️|💥|✅) \| (?!↳)/gmu) ?? []).length, 6, open);
    // Rendered, the folded rows are a real table inside the <details> (blank lines around it).
    const folded = html.slice(
      html.indexOf('<summary>19 passed'),
      html.indexOf('</details>', html.indexOf('<summary>19 passed')),
    );
    assert.equal((folded.match(/<tr>/g) ?? []).length, 1 + 19, folded);
    // A run with few passing tests keeps one open table.
    const small = renderSummary(results([testResult('A', 'pass'), testResult('B', 'fail')]), ctx);
    assert.doesNotMatch(small, /passed or skipped test\(s\)<\/summary>/);
    assert.doesNotMatch(small, /Timeline of/);
    assert.ok(small.indexOf('| ❌ | B |') < small.indexOf('| ✅ | A |'), 'failing rows first');
  });

  it('GFM renders the subtests as table rows of 5 cells', () => {
    for (const row of html.match(/<tr>[\s\S]*?<\/tr>/g) ?? []) {
      const cells = (row.match(/<t[dh]/g) ?? []).length;
      assert.ok(cells === 5 || cells === 2 || cells === 7, row);
    }
    assert.match(decode(html), /↳ route\s+fail: no default route/);
  });
});

describe('escaping: GFM turns no guest text into a tag, a link, emphasis or math', () => {
  const evil = [
    '<img src=x onerror=alert(1)>',
    '*bold* **strong** _em_ ~~del~~',
    '[link](http://e.example) ![pic](http://e.example/p.png)',
    'https://evil.example/x www.evil.example mail@evil.example <https://auto.example>',
    '$x^2$ &amp; &#x3C;b> <!-- open comment',
    '`` a ``` b `',
    '\x1b[31mred\x1b[0m \u202eevil bell\x07 |pipe| \\',
  ].join(' ');
  const starts = ['# heading', '- item', '1. item', '> quote', '    indented', '<details>', '***'];
  const hostile = (name: string, lead: string) =>
    testResult(name, 'fail', {
      reason: `${lead} ${evil}`,
      outputTail: [evil, '```', '</details><img src=y>', `${lead}`],
      digest: digestOf({
        subtests: [{ name: `${lead} ${evil}`, result: 'fail', message: `${lead} ${evil}` }],
        failedUnits: [{ unit: evil, result: 'failed' }],
        notes: [evil],
      }),
    });
  const r: Results = results([testResult('A', 'pass'), ...starts.map((s, i) => hostile(`T${i}`, s))]);
  r.mergeNotes = [{ level: 'notice', message: `${starts[1]} ${evil}` }];
  r.shards = [
    { index: 1, status: 'ok', tests: r.tests.map((t) => t.name), plannedSeconds: 1, attempt: 1 },
  ] as Results['shards'];
  const warnings = starts.map((s) => `${s} ${evil}`);
  // As publish.ts lists the run's warnings.
  const extra = ['**Warnings**', '', ...warnings.map((w) => `- ${mdText(w)}`), ''];

  const ours = new Set([
    'h2',
    'h3',
    'p',
    'details',
    'summary',
    'b',
    'strong',
    'pre',
    'code',
    'table',
    'thead',
    'tbody',
    'tr',
    'th',
    'td',
    'ul',
    'li',
    'blockquote',
  ]);

  for (const [where, md] of [
    ['job summary', renderSummary(r, ctx, extra)],
    [
      'check run summary',
      buildCheckRun(r, { name: 'itest', headSha: 'a', workspace: '/cfg' }).output.summary,
    ],
  ] as const) {
    it(`${where}: only the summary's own tags; guest text shows literally`, () => {
      const html = gfmToHtml(md);
      const found = new Set(tags(html));
      for (const t of found) assert.ok(ours.has(t), `<${t}> in:\n${html}`);
      // <strong> only around the summary's own section titles, <b> only around test names.
      for (const m of html.matchAll(/<strong>([\s\S]*?)<\/strong>/g))
        assert.match(
          m[1]!,
          /^(last lines of the unit|failed units|failed subtests|notes|debug it|Warnings|Environment|1 shard\(s\))$/,
        );
      for (const m of html.matchAll(/<b>([\s\S]*?)<\/b>/g)) assert.match(m[1]!, /^T\d$/);
      assert.doesNotMatch(html, CONTROL);
      // Every row of every table keeps its cells.
      for (const table of html.match(/<table>[\s\S]*?<\/table>/g) ?? []) {
        const widths = new Set(
          (table.match(/<tr>[\s\S]*?<\/tr>/g) ?? []).map((row) => (row.match(/<t[dh]/g) ?? []).length),
        );
        assert.equal(widths.size, 1, table);
      }
      // What the guest wrote reads as it was written (minus control characters) in the <summary> line
      // and in the table cells.
      const visible = ['\x1b[31m', '\x1b[0m', '\x07', '\u202e'].reduce((v, c) => v.replaceAll(c, ''), evil);
      const text = decode(html);
      assert.ok(text.includes(`T0: # heading ${visible}`), text.slice(0, 3000));
      for (const lead of starts) assert.ok(text.includes(`${lead.trim()} ${visible}`), lead);
    });
  }

  it('annotations carry no control characters', () => {
    for (const a of annotations(r, warnings)) assert.doesNotMatch(`${a.title}${a.message}`, CONTROL);
  });
});

describe('size limits with the new order: failures outlive the passing rows', () => {
  const huge = (r: Results) => {
    for (const t of r.tests)
      if (t.status !== 'pass' && t.status !== 'skip')
        t.outputTail = Array.from({ length: 20 }, (_, i) => `${t.name} ${i} ${'x'.repeat(1500)}`);
    return r;
  };

  it('check run (65535 bytes): failures get the room before the passing rows; the artifact stays', () => {
    const kept = (md: string) => {
      const note =
        /> ⚠️ Summary truncated to stay under GitHub's 64 KiB limit: details of (\d+) more failure\(s\)/.exec(
          md,
        );
      assert.ok(note, 'the cut is said');
      return { n: failedTests(redRun()).length - Number(note[1]), at: note.index };
    };
    const r = huge(redRun());
    const md = renderSummary(r, ctx, ARTIFACT, OUTPUT_LIMIT);
    assert.ok(Buffer.byteLength(md) <= OUTPUT_LIMIT, `${Buffer.byteLength(md)} bytes`);
    const { n, at } = kept(md);
    assert.ok(n >= 1 && md.includes('<b>TEST-02-NETWORK</b>'));
    // The next failure would not have fitted even with every table gone.
    const next = failureDetails(failedTests(r)[n]!, ctx).join('\n');
    assert.ok(Buffer.byteLength(md.slice(0, at)) + Buffer.byteLength(next) > OUTPUT_LIMIT - 1000);
    // 400 more passing tests (a 30 KB table) take none of that room: as many failures stay.
    const passes = Array.from({ length: 400 }, (_, i) =>
      testResult(`PASS-${String(i).padStart(3, '0')}-${'n'.repeat(20)}`, 'pass'),
    );
    const crowded = huge(results([...redRun().tests, ...passes]));
    const md2 = renderSummary(crowded, ctx, ARTIFACT, OUTPUT_LIMIT);
    assert.ok(Buffer.byteLength(md2) <= OUTPUT_LIMIT);
    assert.equal(kept(md2).n, n);
    assert.match(md2, /Left out to stay under GitHub's 64 KiB limit: .*the table of passed tests/);
    for (const m of [md, md2]) {
      assert.ok(m.includes('📦 Logs of failed tests'));
      // Whatever was cut, GFM sees closed blocks: no fence or <details> swallows the note or what follows.
      const html = gfmToHtml(m);
      assert.match(html, /<blockquote>\n<p>⚠️ Summary truncated/);
      assert.match(html, /<p>📦 Logs of failed tests/);
    }
  });

  it('many passing tests: every failure survives, the passing rows are the ones left out', () => {
    const r = redRun();
    const many = Array.from({ length: 3000 }, (_, i) =>
      testResult(`PASS-${String(i).padStart(4, '0')}-${'n'.repeat(40)}`, 'pass'),
    );
    const big = results([...r.tests, ...many]);
    const run = buildCheckRun(big, { name: 'itest', headSha: 'a', workspace: '/cfg' });
    const md = run.output.summary;
    assert.ok(Buffer.byteLength(md) <= OUTPUT_LIMIT, `${Buffer.byteLength(md)} bytes`);
    for (const t of r.tests.filter((t) => ['fail', 'timeout', 'error'].includes(t.status)))
      assert.ok(md.includes(`<b>${t.name}</b>`), `${t.name} kept`);
    assert.doesNotMatch(md, /PASS-0000/);
    assert.match(md, /Left out to stay under .*the table of passed tests/);
    // The job summary (1 MiB) has room for all of it.
    const full = renderSummary(big, ctx);
    assert.ok(full.includes('PASS-2999') && Buffer.byteLength(full) <= 1024 * 1024);
  });
});

describe('check run annotations', () => {
  it('carry the guest lines without control characters', () => {
    const t = testResult('B', 'fail', {
      reason: 'exit \x1b[31m1\x1b[0m \u202eevil',
      outputTail: ['bell\x07 nul\x00 \x1b[2Jclear'],
      digest: digestOf({ notes: ['note\x1b]0;title\x07'] }),
    });
    const [a] = checkAnnotations(results([t]), { name: 'itest', headSha: 'a', workspace: '/cfg' });
    assert.doesNotMatch(`${a!.title}${a!.message}${a!.raw_details}`, CONTROL);
    assert.match(a!.message, /B failed: exit 1 evil/);
    assert.match(a!.message, /bell nul clear/);
  });
});

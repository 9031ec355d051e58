/**
 * Markdown for text the step did not write itself (guest output, test names, reasons that quote them),
 * one escape per place it lands: inline text (table cells, list items), raw HTML (the <summary> line), a
 * code span, a fenced block. Each drops control characters (plainText), so no guest line can open a tag,
 * a link, an autolink or emphasis, end a table cell, a code span or a fence, or hide what follows.
 */
import { plainText } from '../../results/terminal.ts';

const oneLine = (s: string) => plainText(s).replace(/\n/g, ' ');
const entities = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const longestTicks = (s: string) => Math.max(0, ...(s.match(/`+/g) ?? []).map((run) => run.length));
// What GFM gives a meaning to inside a line: escapes, code, emphasis, strikethrough, links and images
// ([ ]), table cells, GitHub's math ($), autolinks (`http\://`, `a\@b`, `www\.`); & < > become entities.
const INLINE = /[\\`*_[\]~|$:@]/g;
// What it gives a meaning to at the start of a line (of a list item, of a quote): headings, list items,
// a setext underline, an ordered list's number.
const LEADING = /^([#+=-]|\d+(?=[.)]))/;

/**
 * Inline markdown (a table cell, a list item, a quote): one line, trimmed (leading blanks would make
 * an indented code block of a list item), every character GFM reads as markup escaped.
 */
export function mdText(s: string): string {
  const t = oneLine(s)
    .trim()
    .replace(INLINE, '\\$&')
    .replace(/\b(www)\./gi, '$1\\.')
    .replace(LEADING, (m) => (/^\d/.test(m) ? `${m}\\` : `\\${m}`));
  return entities(t);
}

/** Text inside raw HTML, where markdown is not parsed but entities are: one line, `& < >` as entities. */
export function htmlText(s: string): string {
  return entities(oneLine(s));
}

/**
 * A code span holding `s` verbatim, whatever backticks it holds (its delimiters are longer than any run
 * in it). In a table cell (`cell`), `|` is escaped too: GFM splits cells before it sees code spans. A
 * backslash right before a pipe would escape that escape and end the cell: it is doubled (and shows so).
 */
export function codeSpan(s: string, o: { cell?: boolean } = {}): string {
  const t = oneLine(s);
  if (t === '') return '';
  const tick = '`'.repeat(longestTicks(t) + 1);
  const pad = t.startsWith('`') || t.endsWith('`') ? ' ' : '';
  const span = `${tick}${pad}${t}${pad}${tick}`;
  return o.cell ? span.replace(/\\*\|/g, (m) => `${'\\'.repeat(2 * (m.length - 1))}\\|`) : span;
}

/** A fenced code block holding the lines verbatim: its fence is longer than any run of backticks in them. */
export function codeBlock(lines: string[], info = 'text'): string[] {
  const clean = lines.flatMap((l) => plainText(l).split('\n'));
  const fence = '`'.repeat(Math.max(3, ...clean.map((l) => longestTicks(l) + 1)));
  return [`${fence}${info}`, ...clean, fence];
}

/**
 * Renders mermaid diagrams the way a browser does: mermaid-cli's renderMermaid in Debian's headless
 * Chromium (puppeteer never downloads a browser here: see .puppeteerrc.json). A missing browser is an
 * error that says what to install, never a skipped test.
 */
import { existsSync } from 'node:fs';
import puppeteer from 'puppeteer';
import { renderMermaid } from '@mermaid-js/mermaid-cli';

export const CHROMIUM = process.env.PUPPETEER_EXECUTABLE_PATH || '/usr/bin/chromium';

/** The SVG of each definition, in order, from one browser. */
export async function renderMermaidSvgs(definitions: string[]): Promise<string[]> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM} to render mermaid with: apt-get install chromium (or set PUPPETEER_EXECUTABLE_PATH)`,
    );
  // --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox'],
  });
  try {
    const out: string[] = [];
    for (const d of definitions) {
      const { data } = await renderMermaid(browser, d, 'svg');
      out.push(new TextDecoder().decode(data));
    }
    return out;
  } finally {
    await browser.close();
  }
}

export interface GanttBar {
  id: string;
  x: number;
  width: number;
}

/** The task bars (in the order of the definition) and the axis tick labels of a rendered gantt. */
export function ganttGeometry(svg: string): { bars: GanttBar[]; ticks: string[] } {
  const bars = [
    ...svg.matchAll(
      /<rect id="[^"]*-task(\d+)"[^>]*\bx="([\d.]+)"[^>]*\bwidth="([\d.]+)"[^>]*class="task\b/g,
    ),
  ]
    .map((m) => ({ id: m[1]!, x: Number(m[2]), width: Number(m[3]) }))
    .sort((a, b) => Number(a.id) - Number(b.id));
  const ticks = [...svg.matchAll(/<g class="tick"[^>]*>[\s\S]*?<text[^>]*>([^<]*)<\/text>/g)].map(
    (m) => m[1]!,
  );
  return { bars, ticks };
}

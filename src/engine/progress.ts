/**
 * The live-progress Ui both front doors use: counts running and finished tests, prints one line per event.
 * Plain output (a log, the action) also gets a heartbeat line after a minute without one, saying what
 * runs and for how long; on a terminal the CLI passes a live line instead, redrawn while anything runs.
 */
import type { Ui } from './ui.ts';
import { noPaint, progressEnd, progressStart, type Paint } from '../results/terminal.ts';
import { buildNews, heartbeatLine, liveStatus, type Activity } from '../results/live-status.ts';

/** Where the live status line goes (the CLI's live-line.ts): it draws `text` in place, '' clears it. */
export interface StatusLine {
  status(text: string): void;
}

export interface ProgressOptions {
  /** A terminal's live line: no heartbeat then. */
  live?: StatusLine;
  /** Colours the verdicts of the progress lines. */
  paint?: Paint;
  /** Plain output: a heartbeat after this many ms without a line while anything runs (0: none). */
  heartbeatMs?: number;
  /** How often the live line's elapsed times are redrawn (ms). */
  redrawMs?: number;
  now?: () => number;
}

export const HEARTBEAT_MS = 60_000;

export function progressUi(
  print: (line: string) => void,
  warn: (line: string) => void,
  o: ProgressOptions = {},
): Ui {
  const now = o.now ?? (() => performance.now());
  const paint = o.paint ?? noPaint;
  const heartbeatMs = o.live ? 0 : (o.heartbeatMs ?? HEARTBEAT_MS);
  const running = new Map<string, { name: string; attempt: number; sinceMs: number }>();
  const act: Activity = { running: [], done: 0, total: 0 };
  const activity = (): Activity => ({ ...act, running: [...running.values()] });
  const busy = () => running.size > 0 || act.build !== undefined;

  // Plain output: re-armed by every line, so the log is never quiet for longer than heartbeatMs.
  let beat: NodeJS.Timeout | undefined;
  const armHeartbeat = () => {
    clearTimeout(beat);
    beat = undefined;
    if (heartbeatMs <= 0 || !busy()) return;
    beat = setTimeout(() => {
      const l = heartbeatLine(activity(), now());
      if (l) out(l);
    }, heartbeatMs);
    // Never what keeps the process alive: the VMs and the build do that while they run.
    beat.unref();
  };
  // A terminal: the line is redrawn each second for the elapsed times, while anything runs.
  let redraw: NodeJS.Timeout | undefined;
  const drawLive = () => {
    if (!o.live) return;
    o.live.status(liveStatus(activity(), now()));
    if (busy() && !redraw) {
      redraw = setInterval(() => o.live?.status(liveStatus(activity(), now())), o.redrawMs ?? 1000);
      redraw.unref();
    } else if (!busy() && redraw) {
      clearInterval(redraw);
      redraw = undefined;
    }
  };
  const changed = () => {
    drawLive();
    armHeartbeat();
  };
  const out = (line: string) => {
    print(line);
    armHeartbeat();
  };

  return {
    info: out,
    warn: (l) => {
      warn(l);
      armHeartbeat();
    },
    planned: (tests) => (act.total = tests.length),
    testStart: (spec, attempt) => {
      running.set(spec.name, { name: spec.name, attempt, sinceMs: now() });
      // The live line first: the line printed under it then redraws the new one, not the old.
      drawLive();
      out(progressStart(spec.name, attempt, running.size, act.done, act.total));
    },
    testEnd: (spec, a, retry) => {
      running.delete(spec.name);
      if (!retry) act.done++;
      drawLive();
      out(progressEnd(spec.name, a, retry, act.done, act.total, paint));
    },
    // The image step prints its own lines when the build starts and ends; these feed the live line.
    buildStart: () => {
      act.build = { sinceMs: now() };
      changed();
    },
    buildLine: (line) => {
      if (!act.build) return;
      const news = buildNews(act.build.lastLine, line);
      if (news === act.build.lastLine) return;
      if (news === undefined) delete act.build.lastLine;
      else act.build.lastLine = news;
      // The live line only: a build line is not output of its own, so the heartbeat still comes.
      drawLive();
    },
    buildEnd: () => {
      delete act.build;
      changed();
    },
  };
}

/**
 * The image build in the step's log: mkosi's output streamed into one collapsible group as it reaches the
 * build log, each line fenced from workflow commands (log.ts), since a build script prints what it likes.
 */
import * as core from '@actions/core';
import type { Ui } from '../../engine/ui.ts';
import { info } from './log.ts';

/**
 * `ui`, with the build's lines in a log group; the build's events still reach `ui` too (its heartbeat,
 * which then lands in the group), every other event just passes through.
 */
export function buildGroupUi(ui: Ui): Ui {
  let open = false;
  const end = () => {
    if (open) core.endGroup();
    open = false;
  };
  return {
    ...ui,
    buildStart: (argv, log) => {
      end();
      // The image step has printed the command and the log's path just before.
      core.startGroup('image build (mkosi output)');
      open = true;
      ui.buildStart?.(argv, log);
    },
    buildLine: (line) => {
      info(line);
      ui.buildLine?.(line);
    },
    buildEnd: (ok, seconds) => {
      ui.buildEnd?.(ok, seconds);
      end();
      if (!ok) info(`image: the build ended without an image after ${seconds} s`);
    },
  };
}

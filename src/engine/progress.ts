/** The live-progress Ui both front doors use: counts running and finished tests, prints one line per event. */
import type { Ui } from './ui.ts';
import { progressEnd, progressStart } from '../results/terminal.ts';

export function progressUi(print: (line: string) => void, warn: (line: string) => void): Ui {
  let total = 0;
  let done = 0;
  let running = 0;
  return {
    info: print,
    warn,
    planned: (tests) => (total = tests.length),
    testStart: (spec, attempt) => {
      running++;
      print(progressStart(spec.name, attempt, running, done, total));
    },
    testEnd: (spec, a, retry) => {
      running--;
      if (!retry) done++;
      print(progressEnd(spec.name, a, retry, done, total));
    },
  };
}

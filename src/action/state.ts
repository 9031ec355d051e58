/**
 * The main step's hand-off to the post step: the runner keeps what main saves (GITHUB_STATE) and gives it
 * to post as STATE_<key>. One typed setter and getter per key, so both steps agree on names and values.
 */
import * as core from '@actions/core';

const OUTPUT = 'output';
const LABEL = 'label';
const DONE = 'done';
const STARTED = 'started';

/** The results directory, saved once the inputs parsed: without it the post step has nothing to look at. */
export function setOutputDir(dir: string): void {
  core.saveState(OUTPUT, dir);
}
export function getOutputDir(): string | undefined {
  return core.getState(OUTPUT) || undefined;
}

/** The job's label (user label and shard): the post step names its partial artifact as main would have. */
export function setLabel(label: string): void {
  core.saveState(LABEL, label);
}
export function getLabel(): string | undefined {
  return core.getState(LABEL) || undefined;
}

/** Main finished, with its report or a handled error (not a cancel): the post step has nothing to rescue. */
export function setDone(): void {
  core.saveState(DONE, 'true');
}
export function getDone(): boolean {
  return core.getState(DONE) === 'true';
}

/** The file in which main records what it starts (runner/started.ts): the post step stops only that. */
export function setStartedFile(path: string): void {
  core.saveState(STARTED, path);
}
export function getStartedFile(): string | undefined {
  return core.getState(STARTED) || undefined;
}

/**
 * The step's log for text it did not write itself (guest output, test names, reasons quoting them). The
 * runner takes a line for a workflow command when, with leading blanks trimmed, it starts with `::`, or
 * when it holds `##[` anywhere (actions/runner ActionCommand.TryParseV2 and TryParse): such text is
 * fenced in `::stop-commands::<random token>` ... `::<token>::`, inside which the runner obeys nothing
 * but the token. Text that cannot hold a command is printed as is, so the log stays readable.
 */
import { randomBytes } from 'node:crypto';
import * as core from '@actions/core';

const COMMAND = /::|##\[/;

/** `text`, fenced when it could hold a workflow command; the token is fresh each time, so no text can guess it. */
export function fenceCommands(text: string, token: string = randomBytes(16).toString('hex')): string {
  if (!COMMAND.test(text)) return text;
  return `::stop-commands::${token}\n${text}\n::${token}::`;
}

/** core.info for text that may come from the guest: one write, fenced when it needs to be. */
export function info(text: string): void {
  core.info(fenceCommands(text));
}

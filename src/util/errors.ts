/** Exit statuses of the `itest` CLI; documented in the README and `itest --help`. */
export const ExitCode = {
  ok: 0,
  testsFailed: 1,
  usage: 2,
  hostNotReady: 3,
  imageBuildFailed: 4,
  internal: 70,
  /** Stopped by SIGINT, SIGTERM or SIGHUP (the shell's 128 + SIGINT). */
  cancelled: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error caused by the user's input or host, with a message that names what is wrong and how to fix it.
 * The CLI prints these without a stack trace.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue = ExitCode.usage,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

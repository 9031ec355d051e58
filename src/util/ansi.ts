/** Strips the ANSI colour and cursor sequences that systemd and QEMU print on the console. */
export function stripAnsi(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
}

/**
 * What the engine injects into the guest, as systemd credentials: a drop-in for the test unit, a way out
 * of emergency mode, and (serial transport) a journal export stream. Pure text generation.
 */
export const STATUS_PORT = 'itest.status';
export const JOURNAL_PORT = 'itest.journal';
export const JOURNAL_UNIT = 'itest-journal-export.service';
export const EMERGENCY_UNIT = 'itest-emergency-exit.service';
/** PID 1's exit status when the test unit succeeds (systemd's own convention). */
export const SUCCESS_STATUS = 123;

const port = (name: string) => `/dev/virtio-ports/${name}`;

/**
 * One `Environment=` assignment: double-quoted with C escapes, `%` doubled (unit files expand specifiers
 * there). Values hold no line break (systemd-env.ts refuses one).
 */
export function environmentLine(name: string, value: string): string {
  const quoted = `${name}=${value}`.replace(/[\\"]/g, (c) => `\\${c}`).replace(/%/g, '%%');
  return `Environment="${quoted}"`;
}

/**
 * The drop-in that turns the unit's end into the VM's end, with a status line on the status port; `env`
 * goes into the unit's environment (TEST_MATCH_SUBTEST and the like, as systemd's wrapper passes them).
 */
export function testUnitDropin(unit: string, keepUp = false, env: Record<string, string> = {}): string {
  const lines = [
    keepUp
      ? '# Injected by itest (--shell): report how the test ended and keep the VM up.'
      : '# Injected by itest: end the VM when the test ends, and report how it ended.',
    '[Unit]',
    // basic.target brings sockets (systemd-coredump's among them) that systemd.unit= alone would not start.
    'Wants=basic.target',
    'After=basic.target',
    ...(keepUp
      ? []
      : ['SuccessAction=exit', `SuccessActionExitStatus=${SUCCESS_STATUS}`, 'FailureAction=exit']),
  ];
  if (unit.endsWith('.service')) {
    lines.push(
      '',
      '[Service]',
      'StandardOutput=journal+console',
      'StandardError=journal+console',
      `ExecStopPost=-/bin/sh -c 'echo "SERVICE_RESULT=$SERVICE_RESULT EXIT_CODE=$EXIT_CODE EXIT_STATUS=$EXIT_STATUS" > ${port(STATUS_PORT)}'`,
      ...Object.entries(env).map(([k, v]) => environmentLine(k, v)),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Leaves emergency mode by ending the VM, saying so on the status port first (as systemd's wrapper does). */
export function emergencyExitUnit(): string {
  return [
    '# Injected by itest: a guest that falls into emergency mode ends the VM instead of waiting for the timeout.',
    '[Unit]',
    'DefaultDependencies=no',
    'Conflicts=shutdown.target rescue.service',
    'Before=shutdown.target rescue.service',
    'FailureAction=exit',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStartPre=-/bin/sh -c 'echo "EMERGENCY=1" > ${port(STATUS_PORT)}'`,
    'ExecStart=/bin/false',
    '',
  ].join('\n');
}

export function emergencyDropin(): string {
  return `[Unit]\nWants=${EMERGENCY_UNIT}\n`;
}

/**
 * Serial transport: stream the whole boot's journal in export format to the journal port. It has no
 * shutdown dependencies, so it runs until systemd-shutdown's final kill and catches the last messages.
 * The port's /dev/virtio-ports symlink comes from udev, which may start after this unit: wait up to 60 s.
 */
export function journalExportUnit(): string {
  const dev = port(JOURNAL_PORT);
  return [
    '# Injected by itest: forward the journal to the host over virtio-serial (no vsock needed).',
    '[Unit]',
    'DefaultDependencies=no',
    'After=systemd-journald.socket',
    '',
    '[Service]',
    `ExecStart=/bin/sh -c 'for i in $(seq 600); do [ -e ${dev} ] && exec journalctl -o export -f --no-tail -b > ${dev}; sleep 0.1; done; echo "itest: ${dev} never appeared" >&2; exit 1'`,
    '',
  ].join('\n');
}

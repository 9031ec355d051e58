/**
 * What the engine injects into the guest, as systemd credentials: a drop-in for the test unit, a unit that
 * reports each start and stop of the manager (boots, reboots, soft reboots, PID 1's exit status), a way
 * out of emergency mode, and (serial transport) a journal export stream. Pure text generation.
 */
export const STATUS_PORT = 'itest.status';
export const JOURNAL_PORT = 'itest.journal';
export const JOURNAL_UNIT = 'itest-journal-export.service';
export const EMERGENCY_UNIT = 'itest-emergency-exit.service';
export const MANAGER_UNIT = 'itest-manager-report.service';
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
 * A reboot or soft reboot starts the unit again (the kernel command line names it), and it goes on from
 * whatever state it left on disk, as systemd's own multi-boot tests do.
 */
export function testUnitDropin(
  unit: string,
  keepUp = false,
  env: Record<string, string> = {},
  wants: readonly string[] = [],
): string {
  const lines = [
    keepUp
      ? '# Injected by itest (--shell): report how the test ended and keep the VM up.'
      : '# Injected by itest: end the VM when the test ends, and report how it ended.',
    '[Unit]',
    // basic.target brings sockets (systemd-coredump's among them) that systemd.unit= alone would not start.
    // After the manager report: at every shutdown this unit stops (and writes its line) before it does.
    // `wants`: units the kernel command line's systemd.wants= starts at a boot but not after a soft reboot.
    `Wants=${['basic.target', MANAGER_UNIT, ...wants].join(' ')}`,
    `After=basic.target ${MANAGER_UNIT}`,
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

/** The credential that carries the shutdown hook into the guest, and where the manager report installs it. */
export const SHUTDOWN_HOOK_CREDENTIAL = 'itest.shutdown-hook';
const SHUTDOWN_HOOK = '/usr/lib/systemd/system-shutdown/itest-report';

/**
 * Reports each start of the manager on the status port, whatever the transport: `ITEST_BOOT=<boot id>` at a
 * boot or after a soft reboot (the boot id tells which), and installs the shutdown hook that reports each
 * stop. `ITEST_HOOK=failed` when it could not (a read-only /usr): then only the unit's line is left on
 * serial. Not stopped by an isolate (emergency mode, a test's own).
 */
export function managerReportUnit(): string {
  const dev = port(STATUS_PORT);
  const wait = `for i in $$(seq 100); do [ -e ${dev} ] && break; sleep 0.1; done`;
  const install = `install -D -m 0755 /run/credentials/@system/${SHUTDOWN_HOOK_CREDENTIAL} ${SHUTDOWN_HOOK}`;
  return [
    '# Injected by itest: tell the host of every start of the manager, and install the hook that reports every stop.',
    '[Unit]',
    'IgnoreOnIsolate=yes',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=/bin/sh -c '${wait}; h=ok; ${install} || h=failed; echo "ITEST_BOOT=$$(cat /proc/sys/kernel/random/boot_id) ITEST_HOOK=$$h" > ${dev}'`,
    '',
  ].join('\n');
}

/**
 * The last word of every shutdown but a soft reboot: systemd-shutdown runs it after the final kill, just
 * before it tells a VMM `EXIT_STATUS=` and `X_SYSTEMD_SHUTDOWN=` over the notify socket. It writes the same
 * two facts to the status port: the shutdown verb it is given and PID 1's exit status, which is on
 * systemd-shutdown's command line (`--exit-code=N`, seen with systemd 257). On serial this is the verdict.
 */
export function shutdownHook(): string {
  return [
    '#!/bin/sh',
    "# Injected by itest: report the shutdown and PID 1's exit status to the host.",
    'code=unknown',
    "for a in $(tr '\\0' ' ' < /proc/1/cmdline); do",
    '  case "$a" in --exit-code=*) code="${a#--exit-code=}" ;; esac',
    'done',
    `echo "ITEST_SHUTDOWN=$1 MANAGER_EXIT_CODE=$code" > ${port(STATUS_PORT)}`,
    '',
  ].join('\n');
}

export function emergencyDropin(): string {
  return `[Unit]\nWants=${EMERGENCY_UNIT}\n`;
}

/**
 * Serial transport: stream the whole boot's journal in export format to the journal port. It has no
 * shutdown dependencies, so it runs until systemd-shutdown's final kill and catches the last messages;
 * each boot starts it again, appending that boot's stream to the same file.
 * The port's /dev/virtio-ports symlink comes from udev, which may start after this unit: wait up to 60 s.
 */
export function journalExportUnit(): string {
  const dev = port(JOURNAL_PORT);
  return [
    '# Injected by itest: forward the journal to the host over virtio-serial (no vsock needed).',
    '[Unit]',
    'DefaultDependencies=no',
    'After=systemd-journald.socket',
    // A soft reboot keeps the manager's idea of a unit it never stopped: stop it, so the next boot starts
    // it again; it goes on from its cursor, nothing is lost.
    'Conflicts=soft-reboot.target',
    'Before=soft-reboot.target',
    '',
    '[Service]',
    // The cursor file (in /run, which a soft reboot keeps) lets the stream go on after a soft reboot
    // instead of sending the boot's journal again; a reboot starts a fresh /run and a fresh boot.
    `ExecStart=/bin/sh -c 'for i in $(seq 600); do [ -e ${dev} ] && exec journalctl -o export -f --no-tail -b --cursor-file=/run/itest-journal.cursor > ${dev}; sleep 0.1; done; echo "itest: ${dev} never appeared" >&2; exit 1'`,
    '',
  ].join('\n');
}

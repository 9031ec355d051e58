/**
 * The status port read back: every line the guest wrote to it, in order, over all its boots (QEMU keeps
 * the port's host file open across guest reboots). Three writers (src/guest/units.ts): the test unit's
 * `SERVICE_RESULT=...` line each time it stops, the emergency exit's `EMERGENCY=1`, and the manager
 * report's `ITEST_BOOT=<boot id>` at each start and `ITEST_SHUTDOWN=<kind> MANAGER_EXIT_CODE=<n>` at each
 * stop. Pure.
 */

export interface StatusLine {
  serviceResult?: string;
  exitCode?: string;
  exitStatus?: string;
  emergency?: boolean;
}

/** How the manager stopped: the shutdown under way and the exit status PID 1 ends with. */
export interface ManagerStop {
  /** reboot, soft-reboot, kexec, poweroff, halt, exit, or `unknown` when no shutdown job was seen. */
  shutdown: string;
  exitCode?: number;
}

export interface StatusChannel {
  /** Starts of the manager: the first boot, then one per reboot or soft reboot; 0 when none was reported. */
  boots: number;
  /** Of the starts after the first, those that kept the kernel's boot id (soft reboots). */
  softReboots: number;
  /** The test unit's last line in the last boot: context for the verdict, the verdict only without `final`. */
  unitLine?: string;
  unit?: StatusLine;
  /** The last boot fell into emergency mode. */
  emergency: boolean;
  /** The manager's stop at the very end (no boot followed it): PID 1's own exit status. */
  final?: ManagerStop;
  /** The VM ended while the guest was rebooting (a stop that a boot should have followed). */
  endedRebooting?: ManagerStop;
}

const REBOOTS = new Set(['reboot', 'soft-reboot', 'kexec']);

/** A shutdown verb after which the guest boots again (systemd-shutdown's, X_SYSTEMD_SHUTDOWN='s). Pure. */
export const isReboot = (verb: string): boolean => REBOOTS.has(verb);

function fields(line: string): Record<string, string> {
  return Object.fromEntries(
    line
      .trim()
      .split(/\s+/)
      .map((kv) => {
        const i = kv.indexOf('=');
        return i > 0 ? [kv.slice(0, i), kv.slice(i + 1)] : [kv, undefined];
      })
      .filter((kv): kv is [string, string] => kv[1] !== undefined),
  );
}

/** One `KEY=VALUE ...` line of the test unit or the emergency exit; undefined for any other line. */
export function parseStatusLine(line: string | undefined): StatusLine | undefined {
  if (!line) return undefined;
  const f = fields(line);
  const out: StatusLine = {};
  if (f.SERVICE_RESULT) out.serviceResult = f.SERVICE_RESULT;
  if (f.EXIT_CODE) out.exitCode = f.EXIT_CODE;
  if (f.EXIT_STATUS !== undefined && f.EXIT_STATUS !== '') out.exitStatus = f.EXIT_STATUS;
  if (f.EMERGENCY === '1') out.emergency = true;
  return Object.keys(out).length > 0 ? out : undefined;
}

function managerStop(f: Record<string, string>): ManagerStop {
  const code = f.MANAGER_EXIT_CODE;
  return {
    shutdown: f.ITEST_SHUTDOWN || 'unknown',
    ...(code !== undefined && /^\d+$/.test(code) ? { exitCode: Number(code) } : {}),
  };
}

/** What one boot said is history once the next begins. */
function forgetBoot(out: StatusChannel): void {
  out.emergency = false;
  delete out.unit;
  delete out.unitLine;
}

export function readStatusChannel(lines: readonly string[]): StatusChannel {
  const out: StatusChannel = { boots: 0, softReboots: 0, emergency: false };
  let lastBootId: string | undefined;
  let stop: ManagerStop | undefined;
  for (const raw of lines) {
    const line = raw.trim();
    if (!line) continue;
    const f = fields(line);
    if (f.ITEST_BOOT !== undefined) {
      out.boots++;
      if (out.boots > 1 && f.ITEST_BOOT === lastBootId) out.softReboots++;
      lastBootId = f.ITEST_BOOT;
      // A new boot: what the one before said is history.
      stop = undefined;
      forgetBoot(out);
      continue;
    }
    if (f.ITEST_SHUTDOWN !== undefined) {
      stop = managerStop(f);
      continue;
    }
    const parsed = parseStatusLine(line);
    if (!parsed) continue;
    // A line after a reboot's stop belongs to the next boot, even before that boot's report ran.
    if (stop && isReboot(stop.shutdown)) {
      stop = undefined;
      forgetBoot(out);
    }
    if (parsed.emergency) out.emergency = true;
    if (parsed.serviceResult) {
      out.unit = parsed;
      out.unitLine = line;
    }
  }
  if (stop && isReboot(stop.shutdown)) {
    // The unit's line was the boot's that ended in this reboot: no verdict of the VM's end.
    out.endedRebooting = stop;
    forgetBoot(out);
  } else if (stop) out.final = stop;
  return out;
}

/** `3 boots (1 reboot, 1 soft reboot)`, or undefined for a single boot. Pure. */
export function describeBoots(c: Pick<StatusChannel, 'boots' | 'softReboots'>): string | undefined {
  if (c.boots <= 1) return undefined;
  const hard = c.boots - 1 - c.softReboots;
  const parts = [
    ...(hard ? [`${hard} reboot${hard === 1 ? '' : 's'}`] : []),
    ...(c.softReboots ? [`${c.softReboots} soft reboot${c.softReboots === 1 ? '' : 's'}`] : []),
  ];
  return `${c.boots} boots (${parts.join(', ')})`;
}

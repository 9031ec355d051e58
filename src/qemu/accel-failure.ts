/**
 * What a broken KVM looks like from outside QEMU. Pure: console or stderr lines and QMP run states in, a
 * verdict out. Two families exist on real hosts (background.md, "Hosts whose /dev/kvm lies"): QEMU prints
 * an error and *pauses* the guest (run state `internal-error`, the process keeps running until killed), or
 * QEMU aborts at the first vCPU run. Either way the guest never starts, and waiting for the test's timeout
 * would blame the test.
 */

export interface AccelFailure {
  /** QEMU's own first line, verbatim (trimmed). */
  line: string;
  /** How QEMU reacted: paused the guest, or exited. */
  effect: 'paused' | 'exited';
}

/**
 * QEMU's messages (accel/kvm/kvm-all.c, target/i386/kvm/kvm.c) for a vCPU that KVM cannot run. The first
 * four are followed by vm_stop(RUN_STATE_INTERNAL_ERROR): QEMU stays up with the guest paused.
 */
const PAUSING: RegExp[] = [
  /KVM internal error\. Suberror: \d+/,
  /error: kvm run failed .+/,
  /KVM: entry failed, hardware error 0x[0-9a-f]+/i,
  /KVM: unknown exit reason \d+/,
];

/** QEMU gives up on KVM and exits (or aborts) before or at the first vCPU run. */
const EXITING: RegExp[] = [
  /failed to initialize kvm: .+/i,
  /Could not access KVM kernel module: .+/,
  /kvm_init_vcpu(?: failed)?: .+/,
  /qemu-system-\S+: .*kvm\S*: Assertion .+ failed/i,
  /error: failed to set MSR 0x[0-9a-f]+/i,
  /qemu-system-\S+: .*KVM_\w+ failed.*/,
];

/** The first line in `lines` that says KVM failed, or undefined. Lines may carry ANSI colour already stripped. */
export function findAccelFailure(lines: Iterable<string>): AccelFailure | undefined {
  for (const raw of lines) {
    const line = raw.trim();
    if (!line) continue;
    for (const re of PAUSING) if (re.test(line)) return { line, effect: 'paused' };
    for (const re of EXITING) if (re.test(line)) return { line, effect: 'exited' };
  }
  return undefined;
}

/** QMP run states (qapi/run-state.json) that mean the guest stopped because the accelerator failed. */
export function isAccelRunState(status: string): boolean {
  return status === 'internal-error';
}

/** One sentence for reports: what QEMU said and what it did. */
export function describeAccelFailure(f: AccelFailure, afterSeconds?: number): string {
  const when = afterSeconds !== undefined ? ` ${afterSeconds.toFixed(1)} s after start` : '';
  return f.effect === 'paused'
    ? `QEMU paused the guest${when} with \`${f.line}\` (run state internal-error)`
    : `QEMU stopped${when} with \`${f.line}\``;
}

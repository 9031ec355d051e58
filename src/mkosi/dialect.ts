/**
 * mkosi's command-line dialects. Everything that differs between mkosi versions lives here.
 * 24.x: `qemu` verb and --qemu-* flags; 25+: `vm` verb and --firmware/--vsock/--ram/--kvm/--cpus.
 * All versions append the arguments after the verb to QEMU's command line, but they parse them
 * differently: 24 and 25 take them as an argparse REMAINDER (a `--` would reach QEMU and stop it), 27
 * (and, we assume, 26) takes them as `nargs="*"` and needs `--` before them, or `-device` is read as
 * `-d evice`. Both verified here with 24.3, 25.3 and 27.1.
 */
export interface Dialect {
  name: 'mkosi24' | 'mkosi25+';
  major: number;
  verb: 'qemu' | 'vm';
  flags: { firmware: string; vsock: string; ram: string; kvm: string; cpus: string };
  /** mkosi >= 25 has --console; `native` is QEMU's own stdio console (the others need systemd-pty-forward). */
  console?: string;
  /** Put `--` between the verb and the QEMU arguments. */
  qemuArgsSeparator: boolean;
}

export const MIN_MKOSI_MAJOR = 24;

export function parseMkosiMajor(version: string): number | undefined {
  const m = /^(\d+)/.exec(version);
  return m ? Number(m[1]) : undefined;
}

export function dialectFor(version: string): Dialect {
  const major = parseMkosiMajor(version);
  if (major === undefined) throw new Error(`cannot read mkosi version "${version}"`);
  if (major < MIN_MKOSI_MAJOR)
    throw new Error(`mkosi ${version} is too old: itest needs mkosi ${MIN_MKOSI_MAJOR} or newer`);
  if (major === 24) {
    return {
      name: 'mkosi24',
      major,
      verb: 'qemu',
      flags: {
        firmware: '--qemu-firmware',
        vsock: '--qemu-vsock',
        ram: '--qemu-mem',
        kvm: '--qemu-kvm',
        cpus: '--qemu-smp',
      },
      qemuArgsSeparator: false,
    };
  }
  return {
    name: 'mkosi25+',
    major,
    verb: 'vm',
    flags: { firmware: '--firmware', vsock: '--vsock', ram: '--ram', kvm: '--kvm', cpus: '--cpus' },
    console: 'native',
    qemuArgsSeparator: major >= 26,
  };
}

/**
 * The accelerator of a run, which can change once: when a VM (or the boot probe) shows that KVM lies, the
 * run switches to TCG for good. Every later VM starts under TCG with TCG's timeout scale and vCPU count,
 * VMs still running under KVM are stopped (they are doomed on such a host) and rerun, and the pool shrinks
 * to what TCG allows. With kvm `yes` the switch is refused and the run stops (exit 3).
 */
import {
  fallBackToTcg,
  HostNotReady,
  type AccelFallback,
  type HostSetup,
  type HostRequest,
} from '../host/decide.ts';
import type { Accel } from '../mkosi/vm-argv.ts';

export interface AccelNow {
  accel: Accel;
  timeoutScale: number;
  defaultCpus: number;
}

export class Accelerator {
  private planNow: HostSetup;
  private fallbackInfo: AccelFallback | undefined;
  private fatalError: HostNotReady | undefined;
  private readonly switched = new AbortController();
  private readonly stopped = new AbortController();

  constructor(
    plan: HostSetup,
    private readonly req: HostRequest,
    private readonly onFallback: (fb: AccelFallback, plan: HostSetup) => void = () => {},
  ) {
    this.planNow = plan;
  }

  get plan(): HostSetup {
    return this.planNow;
  }

  get now(): AccelNow {
    const p = this.planNow;
    return { accel: p.accel, timeoutScale: p.timeoutScale, defaultCpus: p.defaultCpus };
  }

  get fallback(): AccelFallback | undefined {
    return this.fallbackInfo;
  }

  /** Set when KVM was required and turned out broken: the run must end with this error. */
  get fatal(): HostNotReady | undefined {
    return this.fatalError;
  }

  /** Fires when the run switched to TCG: VMs still under KVM stop and are rerun. */
  get switchedSignal(): AbortSignal {
    return this.switched.signal;
  }

  /** Fires when the run must stop (KVM required but broken). */
  get stopSignal(): AbortSignal {
    return this.stopped.signal;
  }

  /**
   * KVM was seen failing. Returns `rerun` when the run now uses TCG (the first report switches, later
   * ones from VMs that were already under KVM just rerun), `stop` when KVM was required.
   */
  broken(fb: AccelFallback): 'rerun' | 'stop' {
    if (this.fatalError) return 'stop';
    if (this.fallbackInfo) return 'rerun';
    try {
      this.planNow = fallBackToTcg(this.planNow, this.req, fb);
    } catch (e) {
      if (!(e instanceof HostNotReady)) throw e;
      this.fatalError = e;
      this.stopped.abort(`stopped: ${e.problems[0] ?? 'KVM is broken'}`);
      return 'stop';
    }
    this.fallbackInfo = fb;
    this.onFallback(fb, this.planNow);
    this.switched.abort('the run switched to TCG');
    return 'rerun';
  }
}

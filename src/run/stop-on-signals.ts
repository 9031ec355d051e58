/**
 * How a run stops on a signal, the same for every front door. SIGINT, SIGTERM and SIGHUP, any number
 * of them in any order, abort the run once and are otherwise only reported: the process lives on to end
 * every VM (killTree gives each its grace period) and to write the partial results. Left to Node's
 * default, a second signal or any SIGHUP would kill the process with its detached VMs still running.
 */
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * Listens for the stop signals for the rest of the process's life (a signal while the report is written
 * must not cut it short either); `tell` hears each one (first: it stopped the run). The signal returned is
 * aborted at the first one, with the reason `cancelled by <signal>`, which the tests' results then give.
 */
export function stopOnSignals(tell: (sig: StopSignal, first: boolean) => void): AbortSignal {
  const controller = new AbortController();
  for (const sig of STOP_SIGNALS) {
    process.on(sig, () => {
      const first = !controller.signal.aborted;
      try {
        tell(sig, first);
      } catch {
        // Nowhere to say it (the terminal is gone): stopping matters more.
      }
      if (first) controller.abort(`cancelled by ${sig}`);
    });
  }
  return controller.signal;
}

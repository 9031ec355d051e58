/** Where built images are kept between runs. Backends: a local directory (here), the Actions cache (later). */
export interface RestoreResult {
  hit: boolean;
  /** Directory holding the image (mkosi's output directory) on a hit. */
  dir?: string;
  detail: string;
}

export interface ImageCache {
  readonly backend: string;
  restore(key: string): Promise<RestoreResult>;
  /** A fresh directory to build into on a miss. */
  buildDir(key: string): Promise<string>;
  /** Stores a built image; returns the directory the image is now in (may move it). */
  save(key: string, builtDir: string): Promise<string>;
  /** Throws away a build that failed or was cancelled (default: it stays where it is). */
  discard?(builtDir: string): Promise<void>;
  /**
   * Before a build on a miss: makes this process the one that builds key, or waits while another live
   * process builds it and hands back its image (default: every process builds for itself).
   */
  claimBuild?(key: string, o: ClaimOptions): Promise<BuildClaim>;
}

export interface ClaimOptions {
  /** Stops the wait (the claim then rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Told once when another process is building key: its token. */
  onWait?: (holder: string) => void;
  pollMs?: number;
}

/** This process builds (and releases the claim after saving), or another built the image meanwhile. */
export type BuildClaim = { release(): Promise<void> } | { restored: RestoreResult };

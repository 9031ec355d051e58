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
}

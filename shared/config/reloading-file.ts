import { readFile } from "node:fs/promises";
import { sha256Hex } from "../instance/names.js";
import type { Logger } from "../log.js";

/** A value that may change while the process runs: read it where it is used, never keep it. */
export interface Current<T> {
  current(): T;
}

/** A value that never changes, such as one given in the environment. */
export const fixed = <T>(value: T): Current<T> => ({ current: () => value });

/** How a file's contents become a value. */
export interface FileFormat<T> {
  /** Throws when the contents are malformed, with a message that repeats none of them. */
  parse(text: string): T;
  /** How many entries a value holds (keys, tokens), for the metrics; never the entries. */
  entries(value: T): number;
}

/** Where a reloading file reports, by the variable that names it. */
export interface ReloadObserver {
  loaded(variable: string, entries: number, at: Date): void;
  failed(variable: string): void;
}

export interface ReloadingFileOptions<T> {
  /** The variable that names the file (`API_KEYS_FILE`): in log lines and metric labels. */
  variable: string;
  path: string;
  format: FileFormat<T>;
  /** How soon a change must take effect. */
  withinMs: number;
  /** The contents read at start: malformed ones throw here, so the process does not start. */
  initial: string;
  read?: (path: string) => Promise<string>;
  now?: () => Date;
}

/**
 * The last good contents of a file, re-read while the process runs so that a change takes
 * effect within a bound. It is read twice per bound: read once per bound, a change made
 * just after a read would wait a whole bound plus however late a busy process runs the
 * next read.
 *
 * A polled read, not file-system events: Kubernetes updates a mounted Secret by swapping a
 * symlink (`..data`) to a new directory, which events on the file itself do not report, and
 * events are lost across renames and on some volume types. Reading the path anew follows
 * the symlinks as they are now; comparing a digest of the contents catches the swap and an
 * in-place write alike. Requests read `current()` and never wait for the file system.
 */
export class ReloadingFile<T> implements Current<T> {
  readonly variable: string;
  readonly withinMs: number;
  private value: T;
  private digest: string;
  private loadedAt: Date;
  /** What went wrong last (a read error's code or the bad contents' digest), reported once. */
  private failure: string | undefined;
  private checking = false;
  private report: { log: Logger; observer: ReloadObserver } | undefined;
  private readonly read: (path: string) => Promise<string>;
  private readonly now: () => Date;

  constructor(private readonly options: ReloadingFileOptions<T>) {
    this.variable = options.variable;
    this.withinMs = options.withinMs;
    this.read = options.read ?? ((path) => readFile(path, "utf8"));
    this.now = options.now ?? (() => new Date());
    this.value = options.format.parse(options.initial);
    this.digest = sha256Hex(options.initial);
    this.loadedAt = this.now();
  }

  current(): T {
    return this.value;
  }

  /** Re-reads the file from now on; the timer never keeps the process alive. */
  watch(log: Logger, observer: ReloadObserver): void {
    this.report = { log, observer };
    observer.loaded(this.variable, this.options.format.entries(this.value), this.loadedAt);
    setInterval(() => void this.check(), this.withinMs / 2).unref();
  }

  /** One re-read: new good contents replace the value; bad ones keep it and are reported once. */
  async check(): Promise<void> {
    // A read that hangs (a stuck volume) is not stacked up behind itself.
    if (this.checking) return;
    this.checking = true;
    try {
      let text: string;
      try {
        // Once more before calling it unreadable: the kubelet deletes the old directory right
        // after swapping `..data`, so a read that had just resolved the old one can miss it.
        text = await this.read(this.options.path).catch(() => this.read(this.options.path));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
        this.fail(`read ${code}`, `cannot read ${this.options.path} (${code})`);
        return;
      }
      const digest = sha256Hex(text);
      if (digest === this.digest) {
        this.failure = undefined;
        return;
      }
      let value: T;
      try {
        value = this.options.format.parse(text);
      } catch (error) {
        this.fail(digest, (error as Error).message);
        return;
      }
      this.value = value;
      this.digest = digest;
      this.failure = undefined;
      this.loadedAt = this.now();
      const entries = this.options.format.entries(value);
      this.report?.observer.loaded(this.variable, entries, this.loadedAt);
      this.report?.log.info({ file: this.variable, entries }, "reloaded");
    } finally {
      this.checking = false;
    }
  }

  /** One error line and one count per thing gone wrong, not one per read while it lasts. */
  private fail(failure: string, reason: string): void {
    if (failure === this.failure) return;
    this.failure = failure;
    this.report?.observer.failed(this.variable);
    this.report?.log.error(
      { file: this.variable, reason },
      "cannot reload; the last good contents stay in use",
    );
  }
}

import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../log.js";
import { type FileFormat, ReloadingFile, type ReloadObserver } from "./reloading-file.js";

/** The bound a change takes effect within; the file is read twice per bound. */
const BOUND = 10_000;
const INTERVAL = BOUND / 2;

/** Lines of one word each; a line "bad" is malformed. */
const words: FileFormat<string[]> = {
  parse: (text) => {
    const lines = text.split("\n").filter(Boolean);
    const bad = lines.indexOf("bad");
    if (bad >= 0) throw new Error(`WORDS_FILE: line ${bad + 1} is malformed`);
    return lines;
  },
  entries: (value) => value.length,
};

function harness(initial: string) {
  /** What a read of each path gives: contents, an error, or either decided per read. */
  const files: Record<string, string | Error | (() => string | Error)> = { "/words": initial };
  const reads: string[] = [];
  const logLines: Record<string, unknown>[] = [];
  const events: string[] = [];
  let clock = new Date("2026-01-01T00:00:00Z");
  const log = createLogger(
    { level: "info", name: "test" },
    { write: (line: string) => void logLines.push(JSON.parse(line)) },
  );
  const observer: ReloadObserver = {
    loaded: (variable, entries, at) =>
      events.push(`loaded ${variable} ${entries} ${at.toISOString()}`),
    failed: (variable) => events.push(`failed ${variable}`),
  };
  const file = new ReloadingFile({
    variable: "WORDS_FILE",
    path: "/words",
    format: words,
    withinMs: BOUND,
    initial,
    read: async (path) => {
      reads.push(path);
      const entry = files[path];
      const content = typeof entry === "function" ? entry() : entry;
      if (content instanceof Error) throw content;
      if (content === undefined) throw Object.assign(new Error("gone"), { code: "ENOENT" });
      return content;
    },
    now: () => clock,
  });
  file.watch(log, observer);
  return {
    file,
    files,
    reads,
    logLines,
    events,
    setClock: (iso: string) => {
      clock = new Date(iso);
    },
  };
}

describe("ReloadingFile", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("refuses malformed contents at start", () => {
    expect(() => harness("one\nbad\n")).toThrow("WORDS_FILE: line 2 is malformed");
  });

  it("reports the contents it starts with", () => {
    const h = harness("one\ntwo\n");
    expect(h.file.current()).toEqual(["one", "two"]);
    expect(h.events).toEqual(["loaded WORDS_FILE 2 2026-01-01T00:00:00.000Z"]);
  });

  it("takes new contents within the bound, reading twice per bound", async () => {
    const h = harness("one\n");
    h.files["/words"] = "one\ntwo\nthree\n";
    h.setClock("2026-01-01T00:00:10Z");
    await vi.advanceTimersByTimeAsync(INTERVAL - 1);
    expect(h.reads).toHaveLength(0);
    expect(h.file.current()).toEqual(["one"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.reads).toHaveLength(1);
    expect(h.file.current()).toEqual(["one", "two", "three"]);
    expect(h.events.at(-1)).toBe("loaded WORDS_FILE 3 2026-01-01T00:00:10.000Z");
    expect(h.logLines.at(-1)).toMatchObject({ file: "WORDS_FILE", entries: 3, msg: "reloaded" });
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(h.reads).toHaveLength(6);
  });

  it("reports nothing while the contents stay the same", async () => {
    const h = harness("one\n");
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(h.events).toHaveLength(1);
    expect(h.logLines).toEqual([]);
  });

  it("keeps the last good contents when the file turns malformed, reporting it once, and takes a good file later", async () => {
    const h = harness("one\n");
    h.files["/words"] = "one\nbad\n";
    await vi.advanceTimersByTimeAsync(5 * INTERVAL);
    expect(h.file.current()).toEqual(["one"]);
    expect(h.events.slice(1)).toEqual(["failed WORDS_FILE"]);
    expect(h.logLines).toHaveLength(1);
    expect(h.logLines[0]).toMatchObject({
      level: "error",
      file: "WORDS_FILE",
      reason: "WORDS_FILE: line 2 is malformed",
    });

    // Another mistake is another report.
    h.files["/words"] = "bad\n";
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(h.events.slice(1)).toEqual(["failed WORDS_FILE", "failed WORDS_FILE"]);

    h.files["/words"] = "one\ntwo\n";
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(h.file.current()).toEqual(["one", "two"]);
    expect(h.events.at(-1)).toMatch(/^loaded WORDS_FILE 2 /);
  });

  it("keeps the last good contents while the file cannot be read, naming the reason, not the contents", async () => {
    const h = harness("secret-word\n");
    delete h.files["/words"];
    await vi.advanceTimersByTimeAsync(3 * INTERVAL);
    expect(h.file.current()).toEqual(["secret-word"]);
    expect(h.events.slice(1)).toEqual(["failed WORDS_FILE"]);
    expect(h.logLines).toHaveLength(1);
    expect(h.logLines[0]?.reason).toBe("cannot read /words (ENOENT)");
    expect(JSON.stringify(h.logLines)).not.toContain("secret-word");

    // The same contents back: nothing to load, and a later failure is reported again.
    h.files["/words"] = "secret-word\n";
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(h.events).toHaveLength(2);
    h.files["/words"] = Object.assign(new Error("denied"), { code: "EACCES" });
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(h.events.slice(1)).toEqual(["failed WORDS_FILE", "failed WORDS_FILE"]);
    expect(h.logLines.at(-1)?.reason).toBe("cannot read /words (EACCES)");
  });

  it("reads again at once before calling a file unreadable (the kubelet's swap can race a read)", async () => {
    const h = harness("one\n");
    let failures = 1;
    h.files["/words"] = () =>
      failures-- > 0 ? Object.assign(new Error("gone"), { code: "ENOENT" }) : "one\ntwo\n";
    await vi.advanceTimersByTimeAsync(INTERVAL);
    expect(h.file.current()).toEqual(["one", "two"]);
    expect(h.events.slice(1)).toEqual([expect.stringMatching(/^loaded WORDS_FILE 2 /)]);
    expect(h.reads).toHaveLength(2);
  });

  it("does not stack reads behind one that hangs", async () => {
    let reads = 0;
    const file = new ReloadingFile({
      variable: "WORDS_FILE",
      path: "/words",
      format: words,
      withinMs: BOUND,
      initial: "one\n",
      read: () => {
        reads++;
        return new Promise<string>(() => {});
      },
    });
    file.watch(createLogger({ level: "silent", name: "test" }, { write: () => {} }), {
      loaded: () => {},
      failed: () => {},
    });
    await vi.advanceTimersByTimeAsync(10 * INTERVAL);
    expect(reads).toBe(1);
    expect(file.current()).toEqual(["one"]);
  });
});

describe("ReloadingFile on a volume laid out as the kubelet lays out a Secret", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "fleet-reload-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** The kubelet's atomic writer: a new timestamped directory, `..data` renamed over. */
  function publish(version: string, content: string, old?: string) {
    mkdirSync(join(dir, version));
    writeFileSync(join(dir, version, "words"), content);
    symlinkSync(version, join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    if (old) rmSync(join(dir, old), { recursive: true });
  }

  it("follows the ..data swap, and an in-place write", async () => {
    publish("..2026_01_01_00_00_00.000000001", "one\n");
    symlinkSync("..data/words", join(dir, "words"));
    const file = new ReloadingFile({
      variable: "WORDS_FILE",
      path: join(dir, "words"),
      format: words,
      withinMs: BOUND,
      initial: "one\n",
    });

    publish("..2026_01_01_00_01_00.000000002", "one\ntwo\n", "..2026_01_01_00_00_00.000000001");
    await file.check();
    expect(file.current()).toEqual(["one", "two"]);

    writeFileSync(join(dir, "..2026_01_01_00_01_00.000000002", "words"), "three\n");
    await file.check();
    expect(file.current()).toEqual(["three"]);
  });
});

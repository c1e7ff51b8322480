import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { LogOutput } from "./log.js";

/** A stdout whose reader starts reading only when the test says so. */
class SlowReader extends Writable {
  readonly lines: string[] = [];
  private pending: (() => void)[] = [];
  private reading = false;

  override _write(chunk: Buffer, _encoding: string, done: () => void) {
    this.lines.push(chunk.toString());
    if (this.reading) done();
    else this.pending.push(done);
  }

  startReading() {
    this.reading = true;
    for (const done of this.pending.splice(0)) done();
  }
}

describe("LogOutput", () => {
  it("writes lines through, and says when they have reached the reader", async () => {
    const out = new SlowReader();
    const output = new LogOutput(out);
    output.write("one\n");
    output.write("two\n");
    let flushed = false;
    const waiting = output.flushed(5_000).then(() => {
      flushed = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toBe(false);
    out.startReading();
    await waiting;
    expect(out.lines.filter((l) => l !== "")).toEqual(["one\n", "two\n"]);
  });

  it("stops waiting for a reader that never reads after the bound", async () => {
    const output = new LogOutput(new SlowReader());
    output.write("stuck\n");
    const started = Date.now();
    await output.flushed(100);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("drops lines instead of growing without bound while the reader does not read", () => {
    const out = new SlowReader();
    const output = new LogOutput(out);
    const line = `${"x".repeat(1023)}\n`;
    for (let i = 0; i < 20_000; i++) output.write(line);
    expect(out.writableLength).toBeLessThanOrEqual(8 * 1024 * 1024 + line.length);
  });

  it("ends logging quietly when the reader went away (EPIPE)", async () => {
    const out = new Writable({
      write: (_chunk, _encoding, done) =>
        done(Object.assign(new Error("write EPIPE"), { code: "EPIPE" })),
    });
    const output = new LogOutput(out);
    output.write("first\n");
    await new Promise((r) => setTimeout(r, 10));
    expect(() => output.write("second\n")).not.toThrow();
    await output.flushed(5_000);
  });
});

import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { rssMb } from "./lib.js";

// Asks a handler started with heapProbe's arguments (heap-probe.ts preloaded) what its memory
// holds, after a garbage collection: what is still reachable, told apart from what the heap
// and the allocator keep of what was.

/** A handler's memory at one moment (MB). */
export interface HeapFigures {
  /**
   * RSS as it was, before the probe's collection, and its two parts: memory the process wrote,
   * and files it mapped (Node's own binary, mostly).
   */
  rssMb: number;
  rssAnonMb: number;
  rssFileMb: number;
  /** After the collection: */
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  /** Where a heap snapshot was written, when one was asked for. */
  snapshot?: string;
}

export interface HeapProbe {
  /** Node arguments and environment for the handler. */
  nodeArgs: string[];
  env: Record<string, string>;
  /** Reads the figures of the handler `pid`; `snapshot`: a path to write a heap snapshot to. */
  read(pid: number, snapshot?: string): Promise<HeapFigures>;
}

export function heapProbe(file: string): HeapProbe {
  const preload = resolve(import.meta.dirname, "heap-probe.js");
  return {
    nodeArgs: ["--expose-gc", "--import", preload],
    env: { HEAP_PROBE_FILE: file },
    read: async (pid, snapshot) => {
      const rss = rssMb(pid);
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]);
      rmSync(file, { force: true });
      if (snapshot) writeFileSync(`${file}.snapshot`, snapshot);
      process.kill(pid, "SIGUSR2");
      // A snapshot of a few hundred MB of heap takes seconds.
      for (let i = 0; i < 1_200 && !existsSync(file); i++) await sleep(100);
      await sleep(100);
      const { usage, snapshot: written } = JSON.parse(readFileSync(file, "utf8"));
      const mb = (bytes: number) => bytes / 2 ** 20;
      return {
        rssMb: rss,
        rssAnonMb: kb("RssAnon") / 1024,
        rssFileMb: kb("RssFile") / 1024,
        heapUsedMb: mb(usage.heapUsed),
        heapTotalMb: mb(usage.heapTotal),
        externalMb: mb(usage.external),
        arrayBuffersMb: mb(usage.arrayBuffers),
        snapshot: written,
      };
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

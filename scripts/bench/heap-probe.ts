import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { getHeapSpaceStatistics, writeHeapSnapshot } from "node:v8";

// Preloaded into a benchmarked handler (`node --expose-gc --import heap-probe.js`), never part
// of it: on SIGUSR2 it collects garbage (so what is counted is what is still reachable, not
// what the collector has yet to free) and writes the process's memory, by kind and by V8 heap
// space, as JSON to HEAP_PROBE_FILE; when a file `<HEAP_PROBE_FILE>.snapshot` exists, a heap
// snapshot too, to the path that file holds (writing one grows the process's RSS for good, so
// it is asked for last). RSS alone cannot tell a live set that grew from a heap that grew
// under load and was not given back.

const file = process.env.HEAP_PROBE_FILE;
if (file) {
  process.on("SIGUSR2", () => {
    const collect = (globalThis as { gc?: () => void }).gc;
    collect?.();
    const usage = process.memoryUsage();
    const spaces = Object.fromEntries(
      getHeapSpaceStatistics().map((s) => [
        s.space_name,
        { size: s.space_size, used: s.space_used_size },
      ]),
    );
    const asked = `${file}.snapshot`;
    let snapshot: string | undefined;
    if (existsSync(asked)) {
      snapshot = writeHeapSnapshot(readFileSync(asked, "utf8").trim());
      rmSync(asked);
    }
    writeFileSync(file, JSON.stringify({ collected: Boolean(collect), usage, spaces, snapshot }));
  });
}

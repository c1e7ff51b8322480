import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. the handler's under
 * `BENCH_CPU_PROF=<dir> npm run bench -- --only=gateway`): the functions with the most self
 * time, and the frames with the most total time (self plus everything they call), which is what
 * a flame graph shows as its widest bars. Usage: `node .bench/scripts/bench/profile.js <file or
 * dir> [top]` (a directory: its newest .cpuprofile).
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [target = ".", topArg = "25"] = process.argv.slice(2);
// Printing to a pager that quits early is no error.
process.stdout.on("error", () => process.exit(0));
const file = statSync(target).isDirectory() ? newest(target) : target;
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const top = Number(topArg);

// Each sample's time is the delta to the next one; attribute it to the sampled node.
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
});
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const nameOf = (n: ProfileNode) => {
  const { functionName, url, lineNumber } = n.callFrame;
  const where = url ? `${shorten(url)}:${lineNumber + 1}` : "";
  return `${functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
};

const idle = new Set(["(idle)", "(program)", "(garbage collector)"]);
let totalUs = 0;
let busyUs = 0;
const self = new Map<string, number>();
const total = new Map<string, number>();
for (const [id, us] of selfUs) {
  const node = byId.get(id);
  if (!node) continue;
  totalUs += us;
  if (node.callFrame.functionName !== "(idle)") busyUs += us;
  const name = nameOf(node);
  self.set(name, (self.get(name) ?? 0) + us);
  // Total time: once per distinct frame on the stack (recursion counted once).
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at);
    if (!frame) break;
    const frameName = nameOf(frame);
    if (seen.has(frameName) || frame.callFrame.functionName === "(root)") continue;
    seen.add(frameName);
    total.set(frameName, (total.get(frameName) ?? 0) + us);
  }
}

const pct = (us: number) => `${((us / busyUs) * 100).toFixed(1).padStart(5)}%`;
const print = (title: string, entries: Map<string, number>) => {
  process.stdout.write(`\n${title}\n`);
  for (const [name, us] of [...entries]
    .filter(([name]) => !idle.has(name.split(" ")[0] ?? ""))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(`${pct(us)}  ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}\n`);
  }
};
process.stdout.write(
  `${file}: ${(totalUs / 1e6).toFixed(1)} s sampled, ${(busyUs / 1e6).toFixed(1)} s not idle (percentages of that)\n`,
);
print("self time", self);
print("self time by where the code lives", groupBy(self));
print("total time (the widest frames of the flame graph)", total);

/** Self time summed by package (node_modules), Node's own modules, the fleet's folders, or natives. */
function groupBy(entries: Map<string, number>): Map<string, number> {
  const groups = new Map<string, number>();
  for (const [name, us] of entries) {
    const where = name.split(" ")[1] ?? "";
    let group: string;
    if (!where) group = `(native) ${name}`;
    else if (where.startsWith("node:")) group = `node:${where.slice(5).split(/[/:]/)[0]}`;
    else if (where.startsWith("dist/")) group = where.split("/").slice(0, 3).join("/");
    else if (where.startsWith("@")) group = where.split("/").slice(0, 2).join("/");
    else group = where.split("/")[0] ?? where;
    groups.set(group, (groups.get(group) ?? 0) + us);
  }
  return groups;
}

function newest(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (!files[0]) throw new Error(`no .cpuprofile in ${dir}`);
  return files[0];
}

function shorten(url: string): string {
  const path = url.replace(/^file:\/\//, "");
  const at = path.indexOf("/node_modules/");
  if (at !== -1) return path.slice(at + "/node_modules/".length);
  return path.startsWith("/") ? relative(process.cwd(), path) : path;
}

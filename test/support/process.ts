import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const HANDLER = resolve(import.meta.dirname, "../../dist/handler/main.js");

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

export interface HandlerProcess {
  proc: ChildProcess;
  url: string;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

/**
 * The built handler as a real process, as it runs in production. `stdoutFd`: a file
 * descriptor to give it instead of a pipe this test reads.
 */
export function spawnHandler(env: Record<string, string>, stdoutFd?: number): HandlerProcess {
  const proc = spawn(process.execPath, [HANDLER], {
    // Tests name clients by arbitrary keys: open, unless a test chooses (CLIENT_AUTH).
    env: { PATH: process.env.PATH, HOME: process.env.HOME, CLIENT_AUTH: "open", ...env },
    stdio: ["ignore", stdoutFd ?? "pipe", "pipe"],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  // Whole lines only: a pipe chunk can end in the middle of a JSON line.
  if (proc.stdout) createInterface({ input: proc.stdout }).on("line", (l) => l && stdout.push(l));
  if (proc.stderr) createInterface({ input: proc.stderr }).on("line", (l) => l && stderr.push(l));
  // "close", not "exit": it comes after the output pipes are drained, so no line is missed.
  const exited = new Promise<number | null>((r) => proc.on("close", (code) => r(code)));
  return { proc, url: `http://127.0.0.1:${env.HTTP_PORT}`, stdout, stderr, exited };
}

/** Waits until the process answers /healthz. */
export async function waitHealthy(handler: HandlerProcess, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await fetch(`${handler.url}/healthz`).catch(() => undefined))?.ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the handler did not start: ${handler.stderr.join("\n")}`);
}

/**
 * A TCP relay in front of the API server that a test can cut and restore: from the
 * handler's side, exactly an API server that goes away and comes back.
 */
export class FaultyLink {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => server.listen(this.port, "127.0.0.1", r));
    this.server = server;
  }

  /** Accepts connections and never answers: an API server that hangs. */
  async hang(): Promise<void> {
    await this.down();
    const server = createServer((client) => {
      this.sockets.add(client);
      client.on("close", () => this.sockets.delete(client));
      client.on("error", () => client.destroy());
    });
    await new Promise<void>((r) => server.listen(this.port, "127.0.0.1", r));
    this.server = server;
  }

  /** Refuses new connections and cuts the open ones. */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}

/**
 * A pipe whose reader is there but never reads, already full: any write to `writer` blocks,
 * as it does when a log collector stops reading.
 */
export class StuckPipe {
  private readonly dir = mkdtempSync(join(tmpdir(), "fleet-stuck-"));
  private readonly reader: number;
  /** The write end, blocking, to give a child process as its stdout. */
  readonly writer: number;

  constructor() {
    const path = join(this.dir, "stdout");
    execFileSync("mkfifo", [path]);
    this.reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    // A non-blocking write end of our own fills the pipe until the kernel refuses more.
    const filler = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
    const chunk = Buffer.alloc(4096, "x");
    try {
      for (;;) writeSync(filler, chunk);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
    } finally {
      closeSync(filler);
    }
    this.writer = openSync(path, constants.O_WRONLY);
  }

  close(): void {
    closeSync(this.writer);
    closeSync(this.reader);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

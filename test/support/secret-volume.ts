import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A directory laid out and updated as the kubelet lays out a mounted Secret: the files live
 * in a timestamped directory, `..data` is a symlink to it, and each file is a symlink
 * through `..data`. An update writes a new timestamped directory, points a new `..data_tmp`
 * symlink at it, renames that over `..data` (the one atomic step) and removes the old
 * directory. A key removed from the Secret loses its symlink.
 */
export class SecretVolume {
  readonly dir = mkdtempSync(join(tmpdir(), "fleet-secret-"));
  private generation = 0;
  private names: string[] = [];

  constructor(files: Record<string, string>) {
    this.publish(files);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Replaces the whole contents; returns when the swap is visible (Date.now() of it). */
  publish(files: Record<string, string>): number {
    const data = join(this.dir, "..data");
    const old = existsSync(data) ? readlinkSync(data) : undefined;
    this.generation++;
    const stamp = new Date().toISOString().replace(/[-:T]/g, "_").replace(/\..*/, "");
    const version = `..${stamp}.${String(this.generation).padStart(9, "0")}`;
    mkdirSync(join(this.dir, version));
    for (const [name, content] of Object.entries(files)) {
      writeFileSync(join(this.dir, version, name), content, { mode: 0o644 });
    }
    symlinkSync(version, join(this.dir, "..data_tmp"));
    renameSync(join(this.dir, "..data_tmp"), data);
    const swappedAt = Date.now();
    for (const name of Object.keys(files)) {
      if (!existsSync(join(this.dir, name)))
        symlinkSync(join("..data", name), join(this.dir, name));
    }
    if (old) {
      const previous = new Set(Object.keys(files));
      for (const name of this.names) {
        if (!previous.has(name)) rmSync(join(this.dir, name), { force: true });
      }
      rmSync(join(this.dir, old), { recursive: true, force: true });
    }
    this.names = Object.keys(files);
    return swappedAt;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

import { readdirSync, readFileSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { KubeTransport } from "../../shared/kube/transport.js";
import { ROOT } from "./lib.js";

// What the control plane says about itself, from its Prometheus endpoints: the API server's
// requests and etcd operations (counters: a measurement is a difference), its memory, and
// etcd's memory and database size.

export interface ControlPlane {
  /** Requests the API server answered (apiserver_request_total), everyone's. */
  apiRequests: number;
  /** Writes the API server made to etcd (etcd_requests_total, create + update + delete). */
  etcdWrites: number;
  apiServerRssMb: number;
  etcdRssMb: number;
  /** The other control-plane processes: their informers hold the fleet too. */
  controllerManagerRssMb: number;
  schedulerRssMb: number;
  /** etcd's database file, and the part of it in use (the rest is free pages until a defrag). */
  etcdDbMb: number;
  etcdDbInUseMb: number;
}

/** Sum of a metric's samples whose labels pass `keep`. */
function sum(text: string, metric: string, keep: (labels: string) => boolean = () => true) {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${metric}{`) && !line.startsWith(`${metric} `)) continue;
    const labels = line.slice(metric.length, line.lastIndexOf(" "));
    if (keep(labels)) total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

const clusterDir = () =>
  resolve(realpathSync(resolve(ROOT, ".cluster")), "kwok/clusters/gptme-fleet");

/** Resident memory of this cluster's process running `binary`, from /proc. */
function processRssMb(binary: string): number {
  const path = `${clusterDir()}/bin/${binary}`;
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith(`${path}\0`)) continue;
      const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
      return Number(kb) / 1024;
    } catch {
      // Gone meanwhile.
    }
  }
  return Number.NaN;
}

/** The local cluster's etcd client URL, from the kwokctl configuration beside the kubeconfig. */
function etcdUrl(): string {
  const config = resolve(clusterDir(), "kwok.yaml");
  const url = /--listen-client-urls=(http:\/\/127\.0\.0\.1:\d+)/.exec(
    readFileSync(config, "utf8"),
  )?.[1];
  if (!url) throw new Error(`no etcd client URL in ${config}`);
  return url;
}

export function controlPlane(kc: KubeConfig): { read(): Promise<ControlPlane>; close(): void } {
  const transport = new KubeTransport(credentialsOf(kc), 30_000);
  const etcd = etcdUrl();
  return {
    read: async () => {
      const api = (await transport.get("/metrics")).text;
      const store = await (await fetch(`${etcd}/metrics`)).text();
      const mb = (bytes: number) => bytes / 2 ** 20;
      return {
        apiRequests: sum(api, "apiserver_request_total"),
        etcdWrites: sum(api, "etcd_requests_total", (l) =>
          /operation="(create|update|delete)"/.test(l),
        ),
        apiServerRssMb: mb(sum(api, "process_resident_memory_bytes")),
        etcdRssMb: mb(sum(store, "process_resident_memory_bytes")),
        controllerManagerRssMb: processRssMb("kube-controller-manager"),
        schedulerRssMb: processRssMb("kube-scheduler"),
        etcdDbMb: mb(sum(store, "etcd_mvcc_db_total_size_in_bytes")),
        etcdDbInUseMb: mb(sum(store, "etcd_mvcc_db_total_size_in_use_in_bytes")),
      };
    },
    close: () => transport.close(),
  };
}

import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { KubeTransport } from "../../shared/kube/transport.js";
import { adminKubeConfig, kubeconfigPath } from "./cluster.js";

/**
 * The local control plane's etcd client URL (from the kwokctl configuration beside its
 * kubeconfig), or undefined for a cluster the tests did not start (FLEET_TEST_KUBECONFIG).
 */
export function localEtcdUrl(): string | undefined {
  const config = resolve(dirname(kubeconfigPath()), "kwok/clusters/gptme-fleet/kwok.yaml");
  if (!existsSync(config)) return undefined;
  return /--listen-client-urls=(http:\/\/127\.0\.0\.1:\d+)/.exec(readFileSync(config, "utf8"))?.[1];
}

const b64 = (text: string) => Buffer.from(text).toString("base64");

async function etcd(
  url: string,
  path: string,
  body: object,
): Promise<{ header?: { revision?: string } }> {
  const response = await fetch(`${url}${path}`, { method: "POST", body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`etcd ${path}: HTTP ${response.status}`);
  return (await response.json()) as { header?: { revision?: string } };
}

/**
 * Expires every `continue` token handed out so far, as the API server's own compaction does
 * every five minutes: etcd is compacted at its current revision, and the revision is published
 * where API servers watch for it (the key their compactors share), so the API server drops its
 * cached list snapshots older than that within its 15-second poll (each resource's cache polls
 * on its own). Returns once a token of each of `collections` (e.g.
 * /api/v1/namespaces/ns/pods, two items at least), taken just before, is answered 410 Gone.
 * Taken just before: an older token's snapshot may have left the cache already, and its list
 * then goes to etcd, which answers 410 at once, while newer tokens are still served.
 */
export async function expireContinueTokens(url: string, collections: string[]): Promise<void> {
  const held = await Promise.all(collections.map(heldContinueToken));
  try {
    // A write first, so the compaction passes every snapshot a list was served from so far
    // (one served at the very latest revision would otherwise survive it).
    const { header } = await etcd(url, "/v3/kv/put", {
      key: b64("compact_rev_key"),
      value: b64("0"),
    });
    const revision = header?.revision;
    if (!revision) throw new Error("etcd gave no revision");
    await etcd(url, "/v3/kv/compaction", { revision, physical: true });
    await etcd(url, "/v3/kv/put", { key: b64("compact_rev_key"), value: b64(revision) });
    const deadline = Date.now() + 40_000;
    const expired = async () =>
      (await Promise.all(held.map((h) => h.status()))).every((status) => status === 410);
    while (!(await expired())) {
      if (Date.now() > deadline)
        throw new Error("the API server never answered 410 after compaction");
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    for (const h of held) h.close();
  }
}

/** A `continue` token of a list, and a way to ask whether it still works. */
async function heldContinueToken(collection: string) {
  const transport = new KubeTransport(credentialsOf(adminKubeConfig()), 10_000);
  const path = `${collection}?limit=1`;
  const first = await transport.get(path);
  const token = (JSON.parse(first.text) as { metadata?: { continue?: string } }).metadata?.continue;
  if (!token) throw new Error(`too few objects in ${collection} to hold a continue token`);
  return {
    status: async () =>
      (await transport.get(`${path}&continue=${encodeURIComponent(token)}`)).status,
    close: () => transport.close(),
  };
}

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SigninCodes } from "../../handler/signin/code-store.js";
import { removeExpiredCodes } from "../../reaper/expired-codes.js";
import { clientIdOf, instanceNameOf } from "../../shared/instance/names.js";
import { Kube } from "../../shared/kube/client.js";
import { credentialsOf } from "../../shared/kube/credentials.js";
import { createLogger } from "../../shared/log.js";
import {
  CODE_SELECTOR,
  type CodeInstance,
  codeObjectName,
} from "../../shared/tokens/signin-code.js";
import {
  adminKube,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
} from "../support/cluster.js";
import { installTemplate, LogCapture, startHandler } from "../support/fleet.js";
import { fleetServiceAccount } from "../support/rbac.js";

const KEY = "codes-key-AAAAAAAA";
const MINUTE = 60_000;

describe("one-time codes on the real control plane", () => {
  let namespace: string;
  let admin: Kube;
  /** Two handler replicas and the reaper, each with the rights its manifests grant. */
  let replicaA: Kube;
  let replicaB: Kube;
  let reaper: Kube;
  let instance: CodeInstance;

  async function instanceOf(instanceId: string): Promise<CodeInstance> {
    const handler = startHandler(namespace);
    try {
      expect(
        (await handler.request(`/instances/${instanceId}?wait=0`, { apiKey: KEY })).status,
      ).toBe(202);
    } finally {
      handler.close();
    }
    const name = instanceNameOf(clientIdOf(KEY), instanceId);
    const clientPod = await admin.clientPods.get(name);
    return { name, uid: clientPod?.metadata.uid ?? "", clientId: clientIdOf(KEY), instanceId };
  }

  beforeAll(async () => {
    namespace = await createTestNamespace("codes");
    await installTemplate(namespace);
    admin = adminKube(namespace);
    const handlerKc = await fleetServiceAccount(namespace, "fleet-handler");
    replicaA = new Kube(credentialsOf(handlerKc), namespace);
    replicaB = new Kube(credentialsOf(handlerKc), namespace);
    reaper = new Kube(
      credentialsOf(await fleetServiceAccount(namespace, "fleet-reaper")),
      namespace,
    );
    instance = await instanceOf("codes");
  });

  afterAll(async () => {
    for (const kube of [admin, replicaA, replicaB, reaper]) kube?.close();
    await deleteTestNamespace(namespace);
  });

  it("mints a code another replica redeems exactly once, storing only its hash", async () => {
    const minted = await new SigninCodes(replicaA).mint(instance, "login", MINUTE);
    expect(minted.code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const objects = await admin.codes.list({ labelSelector: CODE_SELECTOR });
    const object = objects.items.find((o) => o.metadata?.name === codeObjectName(minted.code));
    expect(object?.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: "ClientPod",
      uid: instance.uid,
    });
    expect(JSON.stringify(objects)).not.toContain(minted.code);

    expect(await new SigninCodes(replicaB).redeem(minted.code, "login")).toEqual(instance);
    expect(await new SigninCodes(replicaA).redeem(minted.code, "login")).toBeUndefined();
    expect(await admin.codes.get(codeObjectName(minted.code))).toBeUndefined();
  });

  it("redeems a code only for the purpose it was minted for", async () => {
    const codes = new SigninCodes(replicaA);
    const login = await codes.mint(instance, "login", MINUTE);
    const preview = await codes.mint(instance, "preview:5173", MINUTE);
    expect(await codes.redeem(login.code, "preview:5173")).toBeUndefined();
    expect(await codes.redeem(preview.code, "login")).toBeUndefined();
    expect(await codes.redeem(preview.code, "preview:8080")).toBeUndefined();
    // A refused purpose does not use the code up.
    expect(await codes.redeem(login.code, "login")).toEqual(instance);
    expect(await codes.redeem(preview.code, "preview:5173")).toEqual(instance);
  });

  it("lets exactly one of 50 concurrent redeems across two replicas win", async () => {
    const { code } = await new SigninCodes(replicaA).mint(instance, "login", MINUTE);
    const replicas = [new SigninCodes(replicaA), new SigninCodes(replicaB)];
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => replicas[i % 2]?.redeem(code, "login")),
    );
    expect(results.filter((r) => r !== undefined)).toEqual([instance]);
  });

  it("refuses an expired code, and the reaper removes expired codes only", async () => {
    const inAMinute = () => new Date(Date.now() + MINUTE);
    const expired = await new SigninCodes(replicaA).mint(instance, "login", 1_000);
    const live = await new SigninCodes(replicaA).mint(instance, "login", 5 * MINUTE);
    expect(
      await new SigninCodes(replicaB, inAMinute).redeem(expired.code, "login"),
    ).toBeUndefined();
    const logs = new LogCapture();
    const counts = await removeExpiredCodes(reaper, {
      now: inAMinute,
      dryRun: false,
      log: createLogger({ level: "info", name: "fleet-reaper" }, logs),
    });
    expect(counts.removed).toBeGreaterThanOrEqual(1);
    expect(counts.failed).toBe(0);
    expect(await admin.codes.get(codeObjectName(expired.code))).toBeUndefined();
    expect(await admin.codes.get(codeObjectName(live.code))).toBeDefined();
    expect(logs.lines.join("\n")).not.toContain(expired.code);
    expect(await new SigninCodes(replicaB).redeem(live.code, "login")).toEqual(instance);
  });

  it("deletes an instance's codes with it", async () => {
    const doomed = await instanceOf("codes-doomed");
    const { code } = await new SigninCodes(replicaA).mint(doomed, "login", MINUTE);
    await admin.clientPods.delete(doomed.name);
    await eventually(
      async () => ((await admin.codes.get(codeObjectName(code))) ? undefined : true),
      "the garbage collector to remove the code with its ClientPod",
    );
    expect(await new SigninCodes(replicaB).redeem(code, "login")).toBeUndefined();
  });
});

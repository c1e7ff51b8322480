import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  API_SERVICE_IP,
  apiServerPort,
  type Body,
  connectFromClient,
  connectFromHandler,
  deleteInstance,
  getInstance,
  HOST_IP,
  handlerPods,
  podNameOf,
} from "./support/fleet.js";

// The fleet's NetworkPolicies (k8s/local/fleet-operator/08-networkpolicy.yaml) enforced by
// kube-router's firewall on the real node, tried from inside real pods. Every "blocked" has
// an "open" twin to the same address and port, so a target that is simply down cannot pass.
describe("network policy on the real node", () => {
  let a: Body;
  let b: Body;
  let handler: { name: string; ip: string };

  beforeAll(async () => {
    const [first, second] = await Promise.all([
      getInstance("e2e-netpol-key-000a", "netpol"),
      getInstance("e2e-netpol-key-000b", "netpol"),
    ]);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    a = first.body;
    b = second.body;
    const pod = (await handlerPods())[0];
    handler = { name: pod?.metadata?.name ?? "", ip: pod?.status?.podIP ?? "" };
  });

  afterAll(async () => {
    for (const instance of [a, b]) if (instance?.name) await deleteInstance(instance.name);
  });

  it("lets the handler reach a client pod's gptme-server", () => {
    expect(connectFromHandler(handler.name, b.connection.host, 5700)).toBe("open");
  });

  it("keeps a client pod from reaching another client's pod", () => {
    expect(connectFromClient(podNameOf(a), b.connection.host, 5700)).toMatch(/^blocked/);
  });

  it("keeps a client pod from reaching the API server, by its Service and its address", () => {
    // The handler reaches both (its readiness depends on it); a client pod must reach neither.
    expect(connectFromHandler(handler.name, API_SERVICE_IP, 443)).toBe("open");
    expect(connectFromClient(podNameOf(a), API_SERVICE_IP, 443)).toMatch(/^blocked/);
    expect(connectFromHandler(handler.name, HOST_IP, apiServerPort())).toBe("open");
    expect(connectFromClient(podNameOf(a), HOST_IP, apiServerPort())).toMatch(/^blocked/);
  });

  it("keeps a client pod from reaching the handler (its API and its metrics)", async () => {
    const metrics = await fetch(`http://${handler.ip}:8080/metrics`);
    expect(metrics.status).toBe(200);
    expect(connectFromClient(podNameOf(a), handler.ip, 8080)).toMatch(/^blocked/);
  });
});

import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  API_SERVICE_IP,
  apiServerPort,
  type Body,
  connectFromClient,
  connectFromHandler,
  deleteInstance,
  eventually,
  getInstance,
  HOST_IP,
  handlerPods,
  k,
  NAMESPACE,
  podNameOf,
} from "./support/fleet.js";
import { DEFAULT_KEY, deployModelPlan, MODEL_KEY, type ModelPlan } from "./support/plans.js";

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

// Egress for models (k8s/local/models/networkpolicy-model.yaml): the Pods of a plan whose
// template names the in-cluster model endpoint reach it, on its port, and nothing else of the
// cluster; other instances do not reach it at all. The model plan's instance then chats
// through the gateway with the endpoint's answer (the provider key from the Secret).
describe("network policy on the real node: egress for a plan's model", () => {
  let plan: ModelPlan;
  let model: Body;
  let plain: Body;
  let handler: { name: string; ip: string };

  beforeAll(async () => {
    plan = await deployModelPlan();
    const [first, second] = await Promise.all([
      getInstance(MODEL_KEY, "netpol-model"),
      getInstance(DEFAULT_KEY, "netpol-plain"),
    ]);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(second.status, JSON.stringify(second.body)).toBe(200);
    model = first.body;
    plain = second.body;
    const pod = (await handlerPods())[0];
    handler = { name: pod?.metadata?.name ?? "", ip: pod?.status?.podIP ?? "" };
  });

  afterAll(async () => {
    for (const instance of [model, plain]) if (instance?.name) await deleteInstance(instance.name);
    plan?.restore();
  });

  it("makes each instance from its plan's template", () => {
    expect(model).toMatchObject({ plan: "model" });
    expect(plain).toMatchObject({ plan: "default" });
  });

  it("lets the model plan's Pod reach the model endpoint, and no other instance", () => {
    const { ip, port } = plan.endpoint;
    expect(connectFromClient(podNameOf(model), ip, port)).toBe("open");
    expect(connectFromClient(podNameOf(plain), ip, port)).toMatch(/^blocked/);
  });

  it("keeps the model plan's Pod from everything else of the cluster", () => {
    // Each "blocked" has its "open" twin: the handler reaches the same address and port.
    expect(connectFromHandler(handler.name, plain.connection.host, 5700)).toBe("open");
    expect(connectFromClient(podNameOf(model), plain.connection.host, 5700)).toMatch(/^blocked/);
    expect(connectFromClient(podNameOf(model), API_SERVICE_IP, 443)).toMatch(/^blocked/);
    expect(connectFromClient(podNameOf(model), HOST_IP, apiServerPort())).toMatch(/^blocked/);
    expect(connectFromClient(podNameOf(model), handler.ip, 8080)).toMatch(/^blocked/);
    // And the endpoint takes no one else: not even the handler (it may spend the plan's key).
    expect(connectFromHandler(handler.name, plan.endpoint.ip, plan.endpoint.port)).toMatch(
      /^blocked/,
    );
  });

  it("chats through the gateway: provider configured, the endpoint answers with the plan's key", async () => {
    const traefik = inject("traefikUrl");
    const gateway = `${traefik}${model.endpoint.path}/api/v2`;
    const headers = {
      authorization: `Bearer ${model.endpoint.token}`,
      "content-type": "application/json",
    };
    const root = await (await fetch(gateway, { headers })).json();
    expect(root.provider_configured).toBe(true);
    const put = await fetch(`${gateway}/conversations/e2e-model`, {
      method: "PUT",
      headers,
      body: JSON.stringify({ messages: [{ role: "user", content: "hello from the real node" }] }),
    });
    const { session_id } = await put.json();
    const step = await fetch(`${gateway}/conversations/e2e-model/step`, {
      method: "POST",
      headers,
      body: JSON.stringify({ session_id }),
    });
    expect(step.status).toBe(200);
    const reply = await eventually(async () => {
      const conversation = await (
        await fetch(`${gateway}/conversations/e2e-model`, { headers })
      ).json();
      return conversation.log?.find((m: { role: string }) => m.role === "assistant")?.content;
    }, "the model's reply");
    expect(reply).toBe("Hello from fleet-model. You said: hello from the real node");
    // The provider key stays in its Secret: not in the Pod spec, the ClientPod or the template.
    const objects = k(["get", "pods,clientpods,podtemplates", "-n", NAMESPACE, "-o", "json"]);
    expect(objects).not.toContain(plan.providerKey);
  });
});

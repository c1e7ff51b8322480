import { NAMESPACE } from "./fleet.js";

// The model endpoint the plans' tests deploy on the real node: the OpenAI-compatible stand-in
// (scripts/lib/model-endpoint.ts, its code in the ConfigMap fleet-model-endpoint-code, its
// provider key in the Secret fleet-model-credentials), as a Deployment and a Service.

/** The stand-in in a Pod of the handler's image, restricted like every pod here, and its Service. */
export function endpointManifests(): string {
  const labels = { "app.kubernetes.io/name": "fleet-model-endpoint" };
  return JSON.stringify({
    apiVersion: "v1",
    kind: "List",
    items: [
      {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name: "fleet-model-endpoint", namespace: NAMESPACE, labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              nodeSelector: { "gptme.ai/real-node": "true" },
              tolerations: [
                {
                  key: "gptme.ai/real-node",
                  operator: "Equal",
                  value: "true",
                  effect: "NoSchedule",
                },
              ],
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 1000,
                runAsGroup: 1000,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: "model",
                  image: "localhost/gptme-fleet/fleet-handler:local",
                  imagePullPolicy: "Never",
                  command: ["node", "/model/cli.js", "8080", "fleet-model", "/keys/apiKey"],
                  env: [{ name: "MODEL_ENDPOINT_HOST", value: "0.0.0.0" }],
                  ports: [{ name: "http", containerPort: 8080 }],
                  readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
                  resources: {
                    requests: { cpu: "50m", memory: "64Mi" },
                    limits: { cpu: "500m", memory: "128Mi" },
                  },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ["ALL"] },
                  },
                  volumeMounts: [
                    { name: "code", mountPath: "/model", readOnly: true },
                    { name: "keys", mountPath: "/keys", readOnly: true },
                  ],
                },
              ],
              volumes: [
                {
                  name: "code",
                  configMap: {
                    name: "fleet-model-endpoint-code",
                    items: [
                      { key: "cli.js", path: "cli.js" },
                      { key: "lib.js", path: "lib/model-endpoint.js" },
                      { key: "package.json", path: "package.json" },
                    ],
                  },
                },
                { name: "keys", secret: { secretName: "fleet-model-credentials" } },
              ],
            },
          },
        },
      },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "fleet-model-endpoint", namespace: NAMESPACE, labels },
        spec: { selector: labels, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
      },
    ],
  });
}

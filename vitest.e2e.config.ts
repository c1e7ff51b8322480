import { defineConfig } from "vitest/config";

// The end-to-end suite on the real node (npm run test:e2e): the fleet's images run as real
// containers. Not part of `npm test`: it needs root and builds images; .ci/run runs it when
// the machine allows it.
const report = process.env.FLEET_TEST_REPORT;

export default defineConfig({
  test: {
    name: "e2e",
    include: ["test/e2e/**/*.test.ts"],
    environment: "node",
    reporters: report ? ["default", ["json", { outputFile: report }]] : ["default"],
    // Starts the cluster with its real node, builds and imports the images, deploys the
    // overlay k8s/overlays/real-node and runs Traefik in front of it.
    globalSetup: ["test/e2e/support/global-setup.ts"],
    testTimeout: 180_000,
    hookTimeout: 600_000,
    // One node with 2 cores: files run one after another.
    fileParallelism: false,
  },
});

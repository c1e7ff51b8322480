import { defineConfig } from "vitest/config";

// CI asks for a JSON report beside the console output, to print one closing summary line.
const report = process.env.FLEET_TEST_REPORT;

export default defineConfig({
  test: {
    reporters: report ? ["default", ["json", { outputFile: report }]] : ["default"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["handler/**/*.test.ts", "reaper/**/*.test.ts", "shared/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        // Checks of the repository's own files (Dockerfiles, manifests): no cluster needed.
        test: {
          name: "static",
          include: ["test/static/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          // The real-node suite has its own config (vitest.e2e.config.ts, npm run test:e2e).
          exclude: ["test/e2e/**", "test/static/**"],
          environment: "node",
          // Starts (or reuses) the local control plane and installs the CRD once.
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // The control plane has 2 cores to share: files run one after another.
          fileParallelism: false,
        },
      },
    ],
  },
});

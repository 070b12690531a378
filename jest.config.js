/**
 * The workspace's tests in three tiers (docs/schema-workflow.md#test-tiers):
 * - unit: pure tests next to their code; no PostgreSQL, no Redis, no global setup.
 * - integration: one part against the real PostgreSQL/Redis (or a redis-server it starts).
 * - e2e: the processes together through real HTTP and WebSocket.
 * Integration and e2e get databases private to the run (test/global-setup.ts, test/global-teardown.ts).
 * @type {import('jest').Config}
 */
const shared = {
  rootDir: __dirname,
  testEnvironment: "node",
  transform: {
    // TypeScript, and the few ESM-only dependencies (jose), into CommonJS.
    "^.+\\.(ts|js|mjs)$": [
      "@swc/jest",
      { jsc: { target: "es2022", parser: { syntax: "typescript" } }, module: { type: "commonjs" } },
    ],
  },
  transformIgnorePatterns: ["/node_modules/(?!(\\.pnpm/)?(jose)[@/])"],
  testPathIgnorePatterns: ["/node_modules/", "/dist/"],
};

const withServices = {
  ...shared,
  globalSetup: "<rootDir>/test/global-setup.ts",
  globalTeardown: "<rootDir>/test/global-teardown.ts",
};

module.exports = {
  testTimeout: 60_000,
  projects: [
    {
      ...shared,
      displayName: "unit",
      testMatch: [
        "<rootDir>/{kit,gateway,prisma}/src/**/*.test.ts",
        "<rootDir>/subgraphs/*/src/**/*.test.ts",
        "<rootDir>/scripts/**/*.test.ts",
        "<rootDir>/test/runtime/**/*.test.ts",
      ],
      // Points every database and Redis URL at a closed port: a unit test that needs one fails.
      setupFiles: ["<rootDir>/test/unit-env.ts"],
    },
    {
      ...withServices,
      displayName: "integration",
      testMatch: [
        "<rootDir>/{kit,gateway,prisma}/test/**/*.test.ts",
        "<rootDir>/subgraphs/*/test/**/*.test.ts",
        "<rootDir>/test/integration/**/*.test.ts",
        "<rootDir>/test/infra/**/*.test.ts",
      ],
    },
    { ...withServices, displayName: "e2e", testMatch: ["<rootDir>/test/e2e/**/*.test.ts"] },
  ],
};

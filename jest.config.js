/**
 * One jest run for the whole workspace. Integration and end-to-end tests talk to the real
 * PostgreSQL and Redis: test/global-setup.ts creates and migrates databases private to this run
 * and test/global-teardown.ts drops them.
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: "node",
  transform: {
    // TypeScript, and the few ESM-only dependencies (jose), into CommonJS.
    "^.+\\.(ts|js|mjs)$": [
      "@swc/jest",
      { jsc: { target: "es2022", parser: { syntax: "typescript" } }, module: { type: "commonjs" } },
    ],
  },
  transformIgnorePatterns: ["/node_modules/(?!(\\.pnpm/)?(jose)[@/])"],
  testMatch: ["**/?(*.)test.ts"],
  testPathIgnorePatterns: ["/node_modules/", "/dist/"],
  globalSetup: "<rootDir>/test/global-setup.ts",
  globalTeardown: "<rootDir>/test/global-teardown.ts",
  testTimeout: 60_000,
};

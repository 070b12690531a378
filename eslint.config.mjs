// @ts-check
// Lint rules of the workspace (docs/schema-workflow.md#lint-and-formatting says why each is on).
import { readdirSync } from "node:fs";
import path from "node:path";
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { createNodeResolver, importX } from "eslint-plugin-import-x";

const ROOT = import.meta.dirname;

/** The subgraph packages: every folder of subgraphs/ (the registry, kit/src/subgraphs.ts, names the same). */
const SUBGRAPHS = readdirSync(path.join(ROOT, "subgraphs"), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

/** `@hv/<name>` and anything below it. */
const packagePatterns = (names) => names.flatMap((name) => [`@hv/${name}`, `@hv/${name}/*`]);

/** Deep imports around a package's entry point (`@hv/kit/src/x`); `@hv/kit/tracing` is an entry. */
const deepImport = {
  group: ["@hv/*/src", "@hv/*/src/*"],
  message: "Import the package's entry point (@hv/x), not its files.",
};

const restrictImports = (forbidden, message) => ({
  "no-restricted-imports": [
    "error",
    {
      patterns: [
        deepImport,
        ...(forbidden.length > 0 ? [{ group: packagePatterns(forbidden), message }] : []),
      ],
    },
  ],
});

export default tseslint.config(
  {
    ignores: ["**/node_modules/**", "**/dist/**", "**/generated/**", ".tools/**", "coverage/**"],
  },
  {
    files: ["**/*.ts", "**/*.mts"],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      // tsc (noUnusedLocals, noUnusedParameters) already reports these, with `_` as the opt-out.
      "@typescript-eslint/no-unused-vars": "off",
      "no-undef": "off",
    },
  },
  {
    // Tests and benchmarks walk untyped JSON answers (`data.me.profile…`).
    files: ["test/**/*.ts", "**/test/**/*.ts", "**/__tests__/**/*.ts", "**/*.test.ts", "bench/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  // Import boundaries: kit imports no subgraph and no gateway; a subgraph imports no other
  // subgraph and not the gateway; the gateway imports no subgraph.
  {
    files: ["kit/**/*.ts"],
    rules: restrictImports(
      [...SUBGRAPHS, "gateway"],
      "kit is imported by the services, never the other way round.",
    ),
  },
  ...SUBGRAPHS.map((name) => ({
    files: [`subgraphs/${name}/**/*.ts`],
    rules: restrictImports(
      [...SUBGRAPHS.filter((other) => other !== name), "gateway"],
      "Subgraphs meet only through the supergraph and events, never through imports.",
    ),
  })),
  {
    files: ["gateway/**/*.ts"],
    rules: restrictImports(SUBGRAPHS, "The gateway reaches subgraphs over HTTP only."),
  },
  // Package boundaries for relative paths, which no-restricted-imports cannot see: a relative
  // import must resolve inside its own workspace package (the nearest named package.json).
  {
    files: ["**/*.ts", "**/*.mts", "**/*.cjs", "**/*.js", "**/*.mjs"],
    plugins: { "import-x": importX },
    settings: {
      "import-x/resolver-next": [
        createNodeResolver({ extensions: [".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".json"] }),
      ],
    },
    rules: { "import-x/no-relative-packages": ["error", { commonjs: true }] },
  },
  // Tests anywhere may use the root's shared test support.
  {
    files: ["**/*.test.ts", "**/test/**/*.ts", "**/__tests__/**/*.ts"],
    rules: { "import-x/no-relative-packages": ["error", { commonjs: true, ignore: ["/test/support/"] }] },
  },
  {
    files: ["**/*.cjs", "**/*.js", "**/*.mjs"],
    extends: [js.configs.recommended],
    languageOptions: {
      globals: {
        require: "readonly",
        module: "writable",
        process: "readonly",
        console: "readonly",
        __dirname: "readonly",
        fetch: "readonly",
        AbortSignal: "readonly",
      },
    },
  },
);

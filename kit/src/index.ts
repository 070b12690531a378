export * from "./config";
export * from "./subgraphs";
export type { CompleteResolverMap } from "./resolver-types";
export * from "./errors";
export * from "./logger";
export * from "./readiness";
export * from "./redis";
export * from "./versioned-cache";
export * from "./parsed-texts";
export * from "./request-id";
export * from "./service";
export * from "./shutdown";
export * from "./ids";
export * from "./scalars";
export * from "./subgraph";
export * from "./subscriptions";
export * from "./graphql-ws-server";
export * from "./shared-execution";
export * from "./turn-writes";
export * from "./connection-auth";
export * from "./main";
export * from "./rate-limit";
export * from "./ip";
export * from "./auth/viewer";
export * from "./auth/signing-keys";
export * from "./auth/access-tokens";
export * from "./auth/revocations";
export * from "./auth/revocation-assertions";
export * from "./events";
export * from "./worker";
export * from "./media-grants";
export * from "./cache-control";
export * from "./metrics";
export * from "./metrics-server";
export * from "./prisma";
export * from "./group-commit";
export * from "./shipped-files";
export * from "./spread-timer";
export * from "./socket-keepalive";
export * from "./user-changes";
export * from "./direct-queries";
export {
  isRecord,
  knownOperationRules,
  MAX_KNOWN_TEXT,
  operationTextKey,
  validOperation,
} from "./known-queries";

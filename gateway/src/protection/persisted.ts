import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import {
  PrefixingKeyValueCache,
  type KeyValueCache,
  type KeyValueCacheSetOptions,
} from "@apollo/utils.keyvaluecache";
import {
  Kind,
  parse,
  print,
  visit,
  type DefinitionNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
} from "graphql";
import { appError, ErrorCode, shippedFile, type Redis } from "@hv/kit";
import type { GraphQLError } from "graphql";

/** The mobile apps' operations (the contract CI validates against the supergraph). */
export const OPERATIONS_DIR = path.join(__dirname, "..", "..", "..", "operations");
/** Generated from OPERATIONS_DIR by `pnpm run operations:manifest`; a test fails when it is stale. */
export const MANIFEST_PATH = shippedFile("operations/persisted-query-manifest.json");

/** Apollo's persisted query manifest format (what Apollo's client tooling and routers read). */
export interface PersistedQueryManifest {
  format: "apollo-persisted-query-manifest";
  version: 1;
  operations: Array<{ id: string; name: string; type: "query" | "mutation" | "subscription"; body: string }>;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function graphqlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return graphqlFiles(full);
      return entry.isFile() && entry.name.endsWith(".graphql") ? [full] : [];
    })
    .sort();
}

/** Fragments an operation uses, transitively, by name. */
function fragmentsUsedBy(
  operation: OperationDefinitionNode,
  fragments: Map<string, FragmentDefinitionNode>,
): FragmentDefinitionNode[] {
  const used = new Map<string, FragmentDefinitionNode>();
  const queue: DefinitionNode[] = [operation];
  while (queue.length > 0) {
    const node = queue.shift() as DefinitionNode;
    visit(node, {
      FragmentSpread(spread) {
        const name = spread.name.value;
        const fragment = fragments.get(name);
        if (fragment && !used.has(name)) {
          used.set(name, fragment);
          queue.push(fragment);
        }
      },
    });
  }
  return [...used.values()].sort((a, b) => a.name.value.localeCompare(b.name.value));
}

/**
 * One entry per named operation in the folder: the document the app sends for it is the operation
 * followed by the fragments it uses (sorted by name), printed by graphql-js's `print`; its id is
 * the SHA-256 of that text, which is also what Apollo clients send as the APQ hash.
 */
export function buildManifest(dir = OPERATIONS_DIR): PersistedQueryManifest {
  const operations: PersistedQueryManifest["operations"] = [];
  for (const file of graphqlFiles(dir)) {
    const document = parse(readFileSync(file, "utf8"), { noLocation: true });
    const fragments = new Map(
      document.definitions
        .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((d) => [d.name.value, d]),
    );
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
      if (!definition.name) throw new Error(`${path.relative(dir, file)}: every operation must be named`);
      const body = print({
        kind: Kind.DOCUMENT,
        definitions: [definition, ...fragmentsUsedBy(definition, fragments)],
      });
      operations.push({ id: sha256Hex(body), name: definition.name.value, type: definition.operation, body });
    }
  }
  operations.sort((a, b) => a.name.localeCompare(b.name));
  return { format: "apollo-persisted-query-manifest", version: 1, operations };
}

export function renderManifest(manifest: PersistedQueryManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

export function loadManifest(file = MANIFEST_PATH): PersistedQueryManifest {
  const manifest = JSON.parse(readFileSync(file, "utf8")) as PersistedQueryManifest;
  if (
    manifest.format !== "apollo-persisted-query-manifest" ||
    manifest.version !== 1 ||
    !Array.isArray(manifest.operations)
  ) {
    throw new Error(`${file} is not an Apollo persisted query manifest (version 1)`);
  }
  for (const operation of manifest.operations) {
    if (sha256Hex(operation.body) !== operation.id)
      throw new Error(`${file}: the id of ${operation.name} is not the SHA-256 of its body`);
  }
  return manifest;
}

/** The safelist: the manifest's operations by id (= SHA-256 of the body). */
export class Safelist {
  private readonly bodies: Map<string, string>;

  /** The bodies whose id is their SHA-256 (Apollo's `queryHash` for them is then their own). */
  private readonly verified: Map<string, string>;

  constructor(manifest: PersistedQueryManifest) {
    this.bodies = new Map(manifest.operations.map((operation) => [operation.id, operation.body]));
    this.verified = new Map(
      manifest.operations
        .filter((operation) => sha256Hex(operation.body) === operation.id)
        .map((operation) => [operation.id, operation.body]),
    );
  }

  /** The body of `id` when `id` is its SHA-256. */
  verifiedBody(id: string): string | undefined {
    return this.verified.get(id);
  }

  get size(): number {
    return this.bodies.size;
  }

  body(id: string): string | undefined {
    return this.bodies.get(id);
  }

  /**
   * What a client sent (`query` text and/or `extensions.persistedQuery.sha256Hash`) if it is one
   * of the app's operations: the text to run; otherwise PERSISTED_QUERY_NOT_ALLOWED.
   */
  resolve(query: unknown, extensions: unknown): { query: string } | GraphQLError {
    const hash = persistedQueryHash(extensions);
    if (hash !== undefined) {
      const body = this.bodies.get(hash);
      if (body !== undefined && (query === undefined || query === null || query === "" || query === body))
        return { query: body };
    } else if (typeof query === "string" && this.bodies.has(sha256Hex(query))) {
      return { query };
    }
    return notAllowed();
  }

  /** Apollo's persisted-query cache in safelist mode: answers from the manifest, stores nothing. */
  asCache(): KeyValueCache<string> {
    // Keyed by the bare hash: Apollo would otherwise prefix every key with "apq:".
    return PrefixingKeyValueCache.cacheDangerouslyDoesNotNeedPrefixesForIsolation({
      get: async (key: string) => this.bodies.get(key),
      set: async () => undefined,
      delete: async () => undefined,
    });
  }
}

export function notAllowed(): GraphQLError {
  return appError(
    ErrorCode.PERSISTED_QUERY_NOT_ALLOWED,
    "This server runs only the app's registered operations: send one by its extensions.persistedQuery.sha256Hash",
  );
}

/** `extensions.persistedQuery.sha256Hash` of a request (a JSON string on GET), when there is one. */
export function persistedQueryHash(extensions: unknown): string | undefined {
  let value = extensions;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  const persisted = (value as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)
    ?.persistedQuery;
  return typeof persisted?.sha256Hash === "string" ? persisted.sha256Hash : undefined;
}

/**
 * Apollo's persisted-query cache on Redis, shared by every gateway replica: a query registered
 * through one replica is found by the others. Apollo Server takes any `KeyValueCache`; this one
 * uses the gateway's existing ioredis connection (no second Redis client library for three
 * commands).
 */
export class RedisPersistedQueryCache implements KeyValueCache<string> {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly defaultTtlSeconds: number,
  ) {}

  async get(key: string): Promise<string | undefined> {
    return (await this.redis.get(this.prefix + key)) ?? undefined;
  }

  async set(key: string, value: string, options?: KeyValueCacheSetOptions): Promise<void> {
    const ttl = options?.ttl ?? this.defaultTtlSeconds;
    if (ttl === null || ttl <= 0) await this.redis.set(this.prefix + key, value);
    else await this.redis.set(this.prefix + key, value, "EX", Math.ceil(ttl));
  }

  async delete(key: string): Promise<boolean | void> {
    return (await this.redis.del(this.prefix + key)) > 0;
  }
}

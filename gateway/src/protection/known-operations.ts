import type { GraphQLRequest } from "@apollo/server";
import { persistedQueryHash } from "./persisted";
import type { SensitivePoints } from "./rate-limits";

/** Longest query text remembered (longer ones are looked up, never learned). */
const MAX_QUERY_CHARS = 16 * 1024;

/** The key of an operation as a request names it: its text (or persisted hash) and operation name. */
function keyOf(operationName: unknown, query: unknown, hash: string | undefined): string | undefined {
  const name = typeof operationName === "string" ? operationName : "";
  if (typeof query === "string") return `q${name.length}:${name}:${query}`;
  return hash === undefined ? undefined : `h${name.length}:${name}:${hash}`;
}

/**
 * The sensitive points of operations this replica has resolved, by the text (or persisted hash) and
 * operation name that named them, so that the next request naming one is known from its body alone.
 * Only operations that spend sensitive budgets are kept, at most `maxEntries` (the first learned
 * goes first). A body not known here spends its operation's budgets once Apollo resolved it.
 */
export class KnownOperations {
  private readonly known = new Map<string, SensitivePoints>();

  constructor(private readonly maxEntries: number) {}

  /** The points of the operation a JSON body (POST) names, if it was learned. */
  pointsOfBody(body: unknown): SensitivePoints | undefined {
    if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
    const { query, operationName, extensions } = body as Record<string, unknown>;
    const key = keyOf(
      operationName,
      query,
      typeof query === "string" ? undefined : persistedQueryHash(extensions),
    );
    return key === undefined ? undefined : this.known.get(key);
  }

  /** Apollo resolved `request`'s operation (text `source`) to `points`: under its text, and its persisted hash if any. */
  learn(request: GraphQLRequest, source: string | undefined, points: SensitivePoints): void {
    if (points.length === 0 || source === undefined || source.length > MAX_QUERY_CHARS) return;
    const hash = request.extensions?.persistedQuery?.sha256Hash;
    for (const key of [
      keyOf(request.operationName, source, undefined),
      keyOf(request.operationName, undefined, typeof hash === "string" ? hash : undefined),
    ]) {
      if (key === undefined || this.known.has(key)) continue;
      if (this.known.size >= this.maxEntries) this.known.delete(this.known.keys().next().value as string);
      this.known.set(key, points);
    }
  }
}

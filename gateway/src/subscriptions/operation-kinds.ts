import { getOperationAST, parse, type OperationTypeNode } from "graphql";

/** Distinct (text, operation name) pairs remembered; past it the first remembered is forgotten. */
const MAX_REMEMBERED = 500;
/** Longer texts are parsed each time, never remembered. */
const MAX_REMEMBERED_CHARS = 16 * 1024;

/**
 * The kind (query, mutation, subscription) of the operation a WebSocket subscribe message names,
 * by its text and operation name: parsed once per distinct pair (the apps send a few), at most
 * `maxTokens` tokens. Undefined when the text does not parse or names no single operation.
 */
export class OperationKinds {
  private readonly known = new Map<string, OperationTypeNode | undefined>();

  constructor(private readonly maxTokens: number) {}

  of(query: string, operationName: unknown): OperationTypeNode | undefined {
    const name = typeof operationName === "string" && operationName !== "" ? operationName : undefined;
    const key = `${name?.length ?? -1}:${name ?? ""}:${query}`;
    if (this.known.has(key)) return this.known.get(key);
    let kind: OperationTypeNode | undefined;
    try {
      kind = getOperationAST(parse(query, { maxTokens: this.maxTokens, noLocation: true }), name)?.operation;
    } catch {
      kind = undefined;
    }
    if (query.length <= MAX_REMEMBERED_CHARS) {
      if (this.known.size >= MAX_REMEMBERED) this.known.delete(this.known.keys().next().value as string);
      this.known.set(key, kind);
    }
    return kind;
  }
}

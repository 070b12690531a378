import type http from "node:http";
import {
  getOperationAST,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ValidationRule,
} from "graphql";
import { isCompiledQuery, type CompiledQuery } from "graphql-jit";
import { LRUCache } from "lru-cache";
import { compileCounted, singleRootField } from "./jit-executor";

/**
 * An operation text this process answers without Apollo Server: its compiled operation, its kind
 * and its name. A mutation has one root field (as `jitExecutor` compiles them): once `compiled`
 * has run, it has run.
 */
export interface KnownQuery {
  compiled: CompiledQuery;
  operation: "query" | "mutation";
  /** The operation's own name; null for an anonymous one. */
  operationName: string | null;
}

/** A POST body that a known operation may answer: its text, variables, an operation name, nothing else. */
export interface PlainQueryBody {
  query: string;
  variables: Record<string, unknown>;
  operationName: string | undefined;
}

/** Texts longer than this are always left to Apollo Server. */
export const MAX_KNOWN_TEXT = 32 * 1024;
const DEFAULT_MAX_TEXTS = 1_000;
const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i;
/** `Accept` headers Apollo Server answers with `application/json; charset=utf-8`. */
const ANSWERED_AS_JSON = new Set([undefined, "*/*", "application/json"]);

/** A JSON object: not null, not an array. */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The request's operation when Apollo Server would read it as a plain POST of one operation answered
 * as `application/json` (JSON body, no `Accept` or one of `ANSWERED_AS_JSON`, no extensions such as persisted queries, no
 * inline trace asked for); undefined for anything else.
 */
export function plainQueryRequest(req: http.IncomingMessage, body: unknown): PlainQueryBody | undefined {
  if (!isRecord(body) || !answeredAsPlainJson(req)) return undefined;
  const { query } = body;
  if (typeof query !== "string" || query.length > MAX_KNOWN_TEXT) return undefined;
  if (body.extensions !== undefined && body.extensions !== null) return undefined;
  const fields = plainFields(body);
  return fields && { query, ...fields };
}

/** A body's `variables` (an object, {} when absent) and `operationName` (a string) as Apollo Server reads them; undefined when it would refuse them. */
export function plainFields(body: Record<string, unknown>): Omit<PlainQueryBody, "query"> | undefined {
  const { variables, operationName } = body;
  if (variables !== undefined && variables !== null && !isRecord(variables)) return undefined;
  if (operationName !== undefined && operationName !== null && typeof operationName !== "string")
    return undefined;
  return { variables: variables ?? {}, operationName: operationName ?? undefined };
}

/** A JSON POST that Apollo Server answers as `application/json; charset=utf-8`, with no inline trace. */
export function answeredAsPlainJson(req: http.IncomingMessage): boolean {
  const headers = req.headers;
  return (
    req.method === "POST" &&
    ANSWERED_AS_JSON.has(headers.accept) &&
    headers["apollo-federation-include-trace"] === undefined &&
    JSON_CONTENT_TYPE.test(headers["content-type"] ?? "")
  );
}

/** The rules a text answered without Apollo Server must pass: graphql-js's, no schema introspection, then `extra`. */
export function knownOperationRules(extra: readonly ValidationRule[]): ValidationRule[] {
  return [...specifiedRules, NoSchemaIntrospectionCustomRule, ...extra];
}

/**
 * `text` parsed (at most `maxTokens` tokens when given) and valid against `schema` under `rules`,
 * with the operation `operationName` picks; undefined when Apollo Server must answer it instead.
 */
export function validOperation(
  schema: GraphQLSchema,
  rules: readonly ValidationRule[],
  text: string,
  operationName: string | undefined,
  maxTokens?: number,
): { document: DocumentNode; operation: OperationDefinitionNode } | undefined {
  let document: DocumentNode;
  try {
    document = parse(text, maxTokens === undefined ? undefined : { maxTokens });
  } catch {
    return undefined;
  }
  if (validate(schema, document, rules).length > 0) return undefined;
  const operation = getOperationAST(document, operationName);
  return operation ? { document, operation } : undefined;
}

/** The cache key of a text and the operation name sent with it. */
export function operationTextKey(text: string, operationName: string | undefined): string {
  return operationName === undefined ? text : `${operationName}\n${text}`;
}

/**
 * Operation texts compiled once for `schema` (graphql-jit), by text and operation name, at most
 * `maxTexts` of them (least recently used dropped). A text that does not parse, fails validation
 * (`validationRules` beside graphql-js's, and no schema introspection), is neither a query nor a
 * mutation of one root field, or does not compile is remembered as unknown: Apollo Server answers
 * it, with its errors.
 */
export function knownQueries(
  schema: GraphQLSchema,
  validationRules: readonly ValidationRule[] = [],
  maxTexts = DEFAULT_MAX_TEXTS,
): (text: string, operationName: string | undefined) => KnownQuery | undefined {
  const rules = knownOperationRules(validationRules);
  const byText = new LRUCache<string, KnownQuery | false>({ max: maxTexts });
  const compile = (text: string, operationName: string | undefined): KnownQuery | false => {
    const valid = validOperation(schema, rules, text, operationName);
    if (!valid) return false;
    const { document, operation } = valid;
    const kind = operation.operation;
    if (kind !== "query" && !(kind === "mutation" && singleRootField(operation))) return false;
    const compiled = compileCounted(schema, document, operationName);
    if (!isCompiledQuery(compiled)) return false;
    return { compiled, operation: kind, operationName: operation.name?.value ?? null };
  };
  return (text, operationName) => {
    const key = operationTextKey(text, operationName);
    let known = byText.get(key);
    if (known === undefined) {
      known = compile(text, operationName);
      byText.set(key, known);
    }
    return known === false ? undefined : known;
  };
}

let answers = 0;
/** How many requests this process answered with a known operation (tests: the path ran). */
export function knownQueryAnswers(): number {
  return answers;
}
/** Counts one answer of a known operation. */
export function countKnownQueryAnswer(): void {
  answers += 1;
}

import type http from "node:http";
import {
  getOperationAST,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type GraphQLSchema,
  type ValidationRule,
} from "graphql";
import { isCompiledQuery, type CompiledQuery } from "graphql-jit";
import { LRUCache } from "lru-cache";
import { compileCounted } from "./jit-executor";

/** A query text this process answers without Apollo Server: its compiled operation and its name. */
export interface KnownQuery {
  compiled: CompiledQuery;
  /** The operation's own name; null for an anonymous one. */
  operationName: string | null;
}

/** A POST body that a known query may answer: a query text, variables, an operation name, nothing else. */
export interface PlainQueryBody {
  query: string;
  variables: Record<string, unknown>;
  operationName: string | undefined;
}

/** Texts longer than this are always left to Apollo Server. */
const MAX_KNOWN_TEXT = 32 * 1024;
const DEFAULT_MAX_TEXTS = 1_000;
const JSON_CONTENT_TYPE = /^application\/json\s*(;|$)/i;
/** `Accept` headers Apollo Server answers with `application/json; charset=utf-8`. */
const ANSWERED_AS_JSON = new Set([undefined, "*/*", "application/json"]);

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The request's operation when Apollo Server would read it as a plain POST of one query answered
 * as `application/json` (JSON body, no `Accept` or one of `ANSWERED_AS_JSON`, no extensions such as persisted queries, no
 * inline trace asked for); undefined for anything else.
 */
export function plainQueryRequest(req: http.IncomingMessage, body: unknown): PlainQueryBody | undefined {
  if (req.method !== "POST" || !isRecord(body)) return undefined;
  const headers = req.headers;
  if (!ANSWERED_AS_JSON.has(headers.accept) || headers["apollo-federation-include-trace"] !== undefined)
    return undefined;
  if (!JSON_CONTENT_TYPE.test(headers["content-type"] ?? "")) return undefined;
  const { query, variables, operationName } = body;
  if (typeof query !== "string" || query.length > MAX_KNOWN_TEXT) return undefined;
  if (body.extensions !== undefined && body.extensions !== null) return undefined;
  if (variables !== undefined && variables !== null && !isRecord(variables)) return undefined;
  if (operationName !== undefined && operationName !== null && typeof operationName !== "string")
    return undefined;
  return { query, variables: variables ?? {}, operationName: operationName ?? undefined };
}

/**
 * Query texts compiled once for `schema` (graphql-jit), by text and operation name, at most
 * `maxTexts` of them (least recently used dropped). A text that does not parse, fails validation
 * (`validationRules` beside graphql-js's, and no schema introspection), is not a query or does not
 * compile is remembered as unknown: Apollo Server answers it, with its errors.
 */
export function knownQueries(
  schema: GraphQLSchema,
  validationRules: readonly ValidationRule[] = [],
  maxTexts = DEFAULT_MAX_TEXTS,
): (text: string, operationName: string | undefined) => KnownQuery | undefined {
  const rules = [...specifiedRules, NoSchemaIntrospectionCustomRule, ...validationRules];
  const byText = new LRUCache<string, KnownQuery | false>({ max: maxTexts });
  const compile = (text: string, operationName: string | undefined): KnownQuery | false => {
    let document;
    try {
      document = parse(text);
    } catch {
      return false;
    }
    if (validate(schema, document, rules).length > 0) return false;
    const operation = getOperationAST(document, operationName);
    if (operation?.operation !== "query") return false;
    const compiled = compileCounted(schema, document, operationName);
    if (!isCompiledQuery(compiled)) return false;
    return { compiled, operationName: operation.name?.value ?? null };
  };
  return (text, operationName) => {
    const key = operationName === undefined ? text : `${operationName}\n${text}`;
    let known = byText.get(key);
    if (known === undefined) {
      known = compile(text, operationName);
      byText.set(key, known);
    }
    return known === false ? undefined : known;
  };
}

let answers = 0;
/** How many requests this process answered with a known query (tests: the path ran). */
export function knownQueryAnswers(): number {
  return answers;
}
/** Counts one answer of a known query. */
export function countKnownQueryAnswer(): void {
  answers += 1;
}

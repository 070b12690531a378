import {
  createSourceEventStream,
  execute,
  getNamedType,
  getOperationAST,
  Kind,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
} from "graphql";
import { isCompiledQuery, type CompiledQuery } from "graphql-jit";
import { compileCounted } from "./jit-executor";
import { tracingStarted } from "./tracing-shutdown";

type Maybe<T> = T | Promise<T>;

/** A subscription's results: graphql-ws calls `return()` when the client completes. */
type ResultStream = AsyncIterableIterator<ExecutionResult> & {
  return(): Promise<IteratorResult<ExecutionResult>>;
};

/**
 * Whether every field `document`'s operation selects (fragments included) is one of `fields`
 * (schema coordinates `Type.field`) or `__typename`.
 */
export function selectsOnly(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  fields: ReadonlySet<string>,
): boolean {
  if (!getOperationAST(document, operationName)) return false;
  const typeInfo = new TypeInfo(schema);
  let only = true;
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      [Kind.FIELD](node) {
        const name = node.name.value;
        if (name === "__typename") return;
        const parent = typeInfo.getParentType();
        if (!parent || !fields.has(`${getNamedType(parent).name}.${name}`)) only = false;
      },
    }),
  );
  return only;
}

/** `source`'s events through `map`, ended (the source with it) by `return()`. */
function mapEvents<T>(source: AsyncIterator<T>, map: (event: T) => Maybe<ExecutionResult>): ResultStream {
  const stream: ResultStream = {
    async next() {
      const result = await source.next();
      if (result.done) return { done: true, value: undefined };
      try {
        return { done: false, value: await map(result.value) };
      } catch (error) {
        await source.return?.();
        throw error;
      }
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return stream;
    },
  };
  return stream;
}

/**
 * Fields that read the viewer in general but not for the events `holds` accepts (say, a per-viewer
 * flag inside a list the event leaves empty, or a field the event leaves null: nothing below runs).
 */
export interface SharedWhen {
  /** Schema coordinates (`Type.field`) shared, beside the always shared ones, for an event `holds` accepts. */
  fields: ReadonlySet<string>;
  /** Whether, for this event, every one of `fields` resolves the same for every viewer (or never runs). */
  holds(event: object): boolean;
}

/** Whether an operation shares: with every event, only with the events `SharedWhen.holds` accepts, or never. */
type Sharing = "always" | "when" | "never";

const isPromise = <T>(value: Maybe<T>): value is Promise<T> =>
  typeof (value as { then?: unknown } | null)?.then === "function";

/**
 * graphql-js's `subscribe` (for graphql-ws's `subscribe` option), with one execution per event
 * shared by every subscriber whose operation is the same (document object, operation name,
 * variables) and selects only `fields`: schema coordinates whose resolvers read the event alone,
 * never the viewer or the context. Those subscribers get the same result object (read-only). An
 * event is recognised by identity: only subscribers handed the same event object share. An
 * operation that selects `when.fields` too shares only the events `when.holds` accepts.
 * Each event runs graphql-jit's compilation of the operation (compiled once per document and
 * operation name); a result with errors, an operation it cannot compile and every event while
 * tracing runs are graphql-js's own.
 */
export function sharedSubscribe(
  schema: GraphQLSchema,
  fields: ReadonlySet<string>,
  when?: SharedWhen,
): (args: ExecutionArgs) => Promise<ResultStream | ExecutionResult> {
  const widened = when ? new Set([...fields, ...when.fields]) : undefined;
  /** Per document: its number, and per operation name how it may share and its compiled form (null: none). */
  const documents = new WeakMap<
    DocumentNode,
    { id: number; shareable: Map<string, Sharing>; compiled: Map<string, CompiledQuery | null> }
  >();
  let documentCount = 0;
  /** Per event: the results executed for it so far, by operation key. */
  const results = new WeakMap<object, Map<string, Maybe<ExecutionResult>>>();

  const knownOf = (document: DocumentNode) => {
    let known = documents.get(document);
    if (!known) {
      known = { id: (documentCount += 1), shareable: new Map(), compiled: new Map() };
      documents.set(document, known);
    }
    return known;
  };

  /** `args`' operation compiled by graphql-jit; undefined when graphql-js must run it. */
  const compiledOf = (args: ExecutionArgs): CompiledQuery | undefined => {
    // A tracing SDK patched graphql-js's `execute`: events go through it, as requests do.
    if (args.schema !== schema || args.fieldResolver || args.typeResolver || tracingStarted())
      return undefined;
    const known = knownOf(args.document);
    const name = args.operationName ?? "";
    let compiled = known.compiled.get(name);
    if (compiled === undefined) {
      const entry = compileCounted(schema, args.document, args.operationName ?? undefined);
      compiled = isCompiledQuery(entry) ? entry : null;
      known.compiled.set(name, compiled);
    }
    return compiled ?? undefined;
  };

  /** One event's result for `args`: graphql-js's whenever the compiled run has errors. */
  const executeEvent = (args: ExecutionArgs, compiled: CompiledQuery | undefined, event: unknown) => {
    const withGraphqlJs = () => execute({ ...args, rootValue: event });
    if (!compiled) return withGraphqlJs();
    const checked = (run: ExecutionResult): Maybe<ExecutionResult> =>
      run.errors !== undefined || !("data" in run) ? withGraphqlJs() : run;
    try {
      const result = compiled.query(event, args.contextValue, args.variableValues ?? {});
      return isPromise(result) ? result.then(checked, withGraphqlJs) : checked(result);
    } catch {
      return withGraphqlJs();
    }
  };

  /** The key of operations that may share one execution per event, and how; undefined when this one never may. */
  const keyOf = (args: ExecutionArgs): { key: string; always: boolean } | undefined => {
    if (args.schema !== schema) return undefined;
    const known = knownOf(args.document);
    const name = args.operationName ?? "";
    let shareable = known.shareable.get(name);
    if (shareable === undefined) {
      shareable = selectsOnly(schema, args.document, args.operationName, fields)
        ? "always"
        : widened && selectsOnly(schema, args.document, args.operationName, widened)
          ? "when"
          : "never";
      known.shareable.set(name, shareable);
    }
    if (shareable === "never") return undefined;
    const key = `${known.id}\n${name}\n${JSON.stringify(args.variableValues ?? {})}`;
    return { key, always: shareable === "always" };
  };

  return async (args) => {
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in Object(source))) return source as ExecutionResult;
    const events = source as AsyncIterableIterator<unknown>;
    const sharing = keyOf(args);
    const compiled = compiledOf(args);
    return mapEvents(events, (event) => {
      if (
        sharing === undefined ||
        typeof event !== "object" ||
        event === null ||
        (!sharing.always && !when?.holds(event))
      )
        return executeEvent(args, compiled, event);
      const { key } = sharing;
      let byKey = results.get(event);
      if (!byKey) {
        byKey = new Map();
        results.set(event, byKey);
      }
      let result = byKey.get(key);
      if (result === undefined) {
        result = executeEvent(args, compiled, event);
        byKey.set(key, result);
      }
      return result;
    });
  };
}

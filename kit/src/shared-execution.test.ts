import {
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  execute,
  parse,
  type ExecutionResult,
} from "graphql";
import { compiledOperations } from "./jit-executor";
import { selectsOnly, sharedSubscribe } from "./shared-execution";
import { setTracingShutdown } from "./tracing-shutdown";

interface Event {
  text: string;
}

/** Events pushed by the test to every subscriber (each gets its own iterator over the same objects). */
function eventSource() {
  const subscribers = new Set<(event: Event) => void>();
  let ended = 0;
  return {
    push(event: Event) {
      for (const deliver of subscribers) deliver(event);
    },
    ended: () => ended,
    subscribe(): AsyncIterableIterator<Event> {
      const queue: Event[] = [];
      let waiting: ((result: IteratorResult<Event>) => void) | undefined;
      const deliver = (event: Event) => {
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ done: false, value: event });
        } else queue.push(event);
      };
      subscribers.add(deliver);
      const iterator: AsyncIterableIterator<Event> = {
        next: () => {
          const event = queue.shift();
          if (event) return Promise.resolve({ done: false, value: event });
          return new Promise((resolve) => (waiting = resolve));
        },
        return: () => {
          subscribers.delete(deliver);
          ended += 1;
          waiting?.({ done: true, value: undefined });
          return Promise.resolve({ done: true, value: undefined });
        },
        [Symbol.asyncIterator]: () => iterator,
      };
      return iterator;
    },
  };
}

function testSchema(source: ReturnType<typeof eventSource>, calls: { text: number; viewer: number }) {
  const event = new GraphQLObjectType<Event, { viewer: string }>({
    name: "Event",
    fields: {
      text: {
        type: new GraphQLNonNull(GraphQLString),
        resolve: (value) => {
          calls.text += 1;
          return value.text;
        },
      },
      viewer: {
        type: GraphQLString,
        resolve: (_value, _args, context) => {
          calls.viewer += 1;
          return context.viewer;
        },
      },
    },
  });
  const query = new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLString } } });
  const subscription = new GraphQLObjectType({
    name: "Subscription",
    fields: {
      events: { type: event, subscribe: () => source.subscribe(), resolve: (value: Event) => value },
    },
  });
  return new GraphQLSchema({ query, subscription });
}

type Stream = AsyncIterableIterator<ExecutionResult> & { return(): Promise<unknown> };

describe("sharedSubscribe", () => {
  it("should execute once per event for subscribers selecting only shared fields, and end each stream on return", async () => {
    const source = eventSource();
    const calls = { text: 0, viewer: 0 };
    const schema = testSchema(source, calls);
    const subscribe = sharedSubscribe(schema, new Set(["Subscription.events", "Event.text"]));
    const document = parse("subscription { events { __typename text } }");
    const streams = (await Promise.all(
      ["a", "b", "c"].map((viewer) => subscribe({ schema, document, contextValue: { viewer } })),
    )) as Stream[];
    const results = streams.map((stream) => stream.next());
    source.push({ text: "hello" });
    const delivered = await Promise.all(results);
    expect(delivered.map((result) => result.value)).toEqual(
      Array(3).fill({ data: { events: { __typename: "Event", text: "hello" } } }),
    );
    expect(calls.text).toBe(1);
    expect(delivered[1]?.value).toBe(delivered[0]?.value);

    const next = streams.map((stream) => stream.next());
    source.push({ text: "again" });
    await Promise.all(next);
    expect(calls.text).toBe(2);

    await Promise.all(streams.map((stream) => stream.return()));
    expect(source.ended()).toBe(3);
  });

  it("should execute per subscriber when a field outside the shared set is selected", async () => {
    const source = eventSource();
    const calls = { text: 0, viewer: 0 };
    const schema = testSchema(source, calls);
    const subscribe = sharedSubscribe(schema, new Set(["Subscription.events", "Event.text"]));
    const document = parse("subscription { events { text ...Mine } } fragment Mine on Event { viewer }");
    const streams = (await Promise.all(
      ["a", "b"].map((viewer) => subscribe({ schema, document, contextValue: { viewer } })),
    )) as Stream[];
    const results = streams.map((stream) => stream.next());
    source.push({ text: "hello" });
    expect((await Promise.all(results)).map((result) => result.value)).toEqual([
      { data: { events: { text: "hello", viewer: "a" } } },
      { data: { events: { text: "hello", viewer: "b" } } },
    ]);
    expect(calls).toEqual({ text: 2, viewer: 2 });
    await Promise.all(streams.map((stream) => stream.return()));
  });

  it("should share an operation selecting a viewer's field only for the events `when` accepts", async () => {
    const source = eventSource();
    const calls = { text: 0, viewer: 0 };
    const schema = testSchema(source, calls);
    // `viewer` is the same for everyone only on events whose text is "public" (the test's rule).
    const when = {
      fields: new Set(["Event.viewer"]),
      holds: (event: object) => (event as Event).text === "public",
    };
    const subscribe = sharedSubscribe(schema, new Set(["Subscription.events", "Event.text"]), when);
    const document = parse("subscription { events { text viewer } }");
    const streams = (await Promise.all(
      ["a", "b"].map((viewer) => subscribe({ schema, document, contextValue: { viewer } })),
    )) as Stream[];
    let results = streams.map((stream) => stream.next());
    source.push({ text: "mine" });
    expect((await Promise.all(results)).map((result) => result.value)).toEqual([
      { data: { events: { text: "mine", viewer: "a" } } },
      { data: { events: { text: "mine", viewer: "b" } } },
    ]);
    expect(calls).toEqual({ text: 2, viewer: 2 });

    results = streams.map((stream) => stream.next());
    source.push({ text: "public" });
    const shared = await Promise.all(results);
    expect(calls).toEqual({ text: 3, viewer: 3 });
    expect(shared[1]?.value).toBe(shared[0]?.value);
    await Promise.all(streams.map((stream) => stream.return()));
  });

  it("should execute per subscriber when the variables differ", async () => {
    const source = eventSource();
    const calls = { text: 0, viewer: 0 };
    const schema = testSchema(source, calls);
    const subscribe = sharedSubscribe(schema, new Set(["Subscription.events", "Event.text"]));
    const document = parse("subscription ($t: Boolean!) { events { text @include(if: $t) } }");
    const streams = (await Promise.all(
      [true, false].map((t) => subscribe({ schema, document, variableValues: { t }, contextValue: {} })),
    )) as Stream[];
    const results = streams.map((stream) => stream.next());
    source.push({ text: "hello" });
    expect((await Promise.all(results)).map((result) => result.value)).toEqual([
      { data: { events: { text: "hello" } } },
      { data: { events: {} } },
    ]);
    await Promise.all(streams.map((stream) => stream.return()));
  });
});

describe("sharedSubscribe's compiled execution", () => {
  it("should compile each operation once and answer what graphql-js answers for every event", async () => {
    const source = eventSource();
    const calls = { text: 0, viewer: 0 };
    const schema = testSchema(source, calls);
    const subscribe = sharedSubscribe(schema, new Set(["Subscription.events", "Event.text"]));
    const shared = parse("subscription { events { __typename text } }");
    const own = parse("subscription { events { text viewer } }");
    const before = compiledOperations();
    const streams = (await Promise.all([
      subscribe({ schema, document: shared, contextValue: { viewer: "a" } }),
      subscribe({ schema, document: shared, contextValue: { viewer: "b" } }),
      subscribe({ schema, document: own, contextValue: { viewer: "a" } }),
      subscribe({ schema, document: own, contextValue: { viewer: "b" } }),
    ])) as Stream[];
    for (const text of ["hello", "again", "third"]) {
      const results = streams.map((stream) => stream.next());
      const event = { text };
      source.push(event);
      const delivered = (await Promise.all(results)).map((result) => result.value as ExecutionResult);
      const expected = await Promise.all(
        [
          [shared, "a"],
          [shared, "b"],
          [own, "a"],
          [own, "b"],
        ].map(([document, viewer]) =>
          execute({
            schema,
            document: document as typeof shared,
            rootValue: event,
            contextValue: { viewer },
          }),
        ),
      );
      expect(JSON.stringify(delivered)).toBe(JSON.stringify(expected));
    }
    expect(compiledOperations() - before).toBe(2);
    await Promise.all(streams.map((stream) => stream.return()));
  });

  it("should leave events to graphql-js (which tracing patches) while tracing runs", async () => {
    const source = eventSource();
    const schema = testSchema(source, { text: 0, viewer: 0 });
    const subscribe = sharedSubscribe(schema, new Set(["Subscription.events", "Event.text"]));
    const before = compiledOperations();
    setTracingShutdown(() => Promise.resolve());
    try {
      const stream = (await subscribe({
        schema,
        document: parse("subscription { events { text } }"),
      })) as Stream;
      const result = stream.next();
      source.push({ text: "traced" });
      expect((await result).value).toEqual({ data: { events: { text: "traced" } } });
      await stream.return();
    } finally {
      setTracingShutdown(undefined);
    }
    expect(compiledOperations()).toBe(before);
  });

  it("should answer graphql-js's own errors when an event fails to resolve", async () => {
    const source = eventSource();
    const schema = testSchema(source, { text: 0, viewer: 0 });
    const subscribe = sharedSubscribe(schema, new Set(["Subscription.events", "Event.text"]));
    const document = parse("subscription Feed { events { text } }");
    const stream = (await subscribe({ schema, document, contextValue: {} })) as Stream;
    const result = stream.next();
    const event = { text: null } as unknown as Event; // `text` is non-null: its resolution fails
    source.push(event);
    const delivered = (await result).value as ExecutionResult;
    const expected = await execute({ schema, document, rootValue: event, contextValue: {} });
    expect(delivered.errors?.length).toBe(1);
    expect(JSON.stringify(delivered)).toBe(JSON.stringify(expected));
    expect(delivered.errors?.[0]?.locations).toEqual(expected.errors?.[0]?.locations);
    await stream.return();
  });
});

describe("selectsOnly", () => {
  it("should look into fragments and inline fragments", () => {
    const schema = testSchema(eventSource(), { text: 0, viewer: 0 });
    const fields = new Set(["Subscription.events", "Event.text"]);
    const only = (query: string) => selectsOnly(schema, parse(query), undefined, fields);
    expect(only("subscription { events { text } }")).toBe(true);
    expect(only("subscription { events { ... on Event { text __typename } } }")).toBe(true);
    expect(only("subscription { events { ... on Event { viewer } } }")).toBe(false);
    expect(only("subscription { events { ...F } } fragment F on Event { viewer }")).toBe(false);
  });
});

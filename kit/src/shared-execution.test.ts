import {
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type ExecutionResult,
} from "graphql";
import { selectsOnly, sharedSubscribe } from "./shared-execution";

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

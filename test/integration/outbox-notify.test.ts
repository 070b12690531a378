import { Client } from "pg";
import { OUTBOX_CHANNEL } from "@hv/kit";
import { databaseUrlEnvVar, SCHEMAS, type SchemaName } from "@hv/prisma";
import { waitFor } from "../support/wait";

// Each subgraph's migrated test database (test/global-setup.ts): the real outbox_events trigger.
const clients: Client[] = [];

async function connect(name: SchemaName): Promise<Client> {
  const client = new Client({ connectionString: process.env[databaseUrlEnvVar(name)] });
  clients.push(client);
  await client.connect();
  return client;
}

/** Every notification on OUTBOX_CHANNEL in `name`'s database from now on. */
async function listen(name: SchemaName): Promise<string[]> {
  const listener = await connect(name);
  const received: string[] = [];
  listener.on("notification", (message) => received.push(message.channel));
  await listener.query(`LISTEN ${OUTBOX_CHANNEL}`);
  return received;
}

const insertEvent = (client: Client, type: string) =>
  client.query("INSERT INTO outbox_events (id, type, payload) VALUES (gen_random_uuid(), $1, '{}')", [type]);

/** Commits a transaction that notifies last, to know every earlier notification has arrived. */
async function settled(writer: Client, received: string[], count: number): Promise<void> {
  await insertEvent(writer, "test.marker");
  await waitFor("the marker's notification", () => received.length >= count);
}

afterEach(async () => {
  for (const client of clients.splice(0)) {
    await client.query("DELETE FROM outbox_events WHERE type LIKE 'test.%' OR type = 'message.created'");
    await client.end();
  }
});

describe.each(SCHEMAS)("the outbox_events trigger (%s)", (name) => {
  it("should notify once per committed transaction that wrote events, and never for a rolled-back one", async () => {
    const received = await listen(name);
    const writer = await connect(name);
    await writer.query("BEGIN");
    await insertEvent(writer, "test.one");
    await insertEvent(writer, "test.two");
    await writer.query("COMMIT");
    await waitFor("the notification", () => received.length === 1);
    await writer.query("BEGIN");
    await insertEvent(writer, "test.rolled_back");
    await writer.query("ROLLBACK");
    await settled(writer, received, 2);
    expect(received).toEqual([OUTBOX_CHANNEL, OUTBOX_CHANNEL]);
  });
});

describe("the chat outbox_events trigger", () => {
  it("should not notify for message.created, which each send hands to the relay itself", async () => {
    const received = await listen("chat");
    const writer = await connect("chat");
    await insertEvent(writer, "message.created");
    await settled(writer, received, 1);
    expect(received).toEqual([OUTBOX_CHANNEL]); // the marker's alone
  });
});

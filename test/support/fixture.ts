import { testDatabases, type TestDatabases } from "./seed";
import { startSystem, type RunningSystem } from "./system";
import { UsersClient } from "./users-client";

export interface SystemFixture {
  system: RunningSystem;
  /** Clients on this run's databases, to arrange and check what each subgraph stores. */
  dbs: TestDatabases;
  /** A mobile client on the gateway. */
  client: UsersClient;
}

/**
 * The whole system (startSystem) and this run's database clients for the tests of one describe
 * block: started before them, stopped after. Read the fields inside tests, not when declaring them.
 */
export function useSystem(overrides: Record<string, string> = {}): SystemFixture {
  const fixture = {} as SystemFixture;
  beforeAll(async () => {
    fixture.dbs = testDatabases();
    fixture.system = await startSystem(overrides);
    fixture.client = new UsersClient(fixture.system.gatewayUrl);
  });
  afterAll(async () => {
    await fixture.system?.stop();
    await fixture.dbs?.close();
  });
  return fixture;
}

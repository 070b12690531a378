import diagnosticsChannel from "node:diagnostics_channel";
import type { ClientRequest } from "node:http";
import { graphqlRequest } from "../../support/system";
import { startLightGateway, type LightGateway } from "../protection/support";

/** Every outgoing HTTP request this process starts (node:http and undici, which fetch uses), by host. */
function recordOutgoingHosts(): { hosts: string[]; stop(): void } {
  const hosts: string[] = [];
  const onHttp = (message: unknown) => {
    const { request } = message as { request: ClientRequest };
    hosts.push(request.host);
  };
  const onUndici = (message: unknown) => {
    const { request } = message as { request: { origin: string | URL } };
    hosts.push(new URL(String(request.origin)).hostname);
  };
  diagnosticsChannel.subscribe("http.client.request.start", onHttp);
  diagnosticsChannel.subscribe("undici:request:create", onUndici);
  return {
    hosts,
    stop() {
      diagnosticsChannel.unsubscribe("http.client.request.start", onHttp);
      diagnosticsChannel.unsubscribe("undici:request:create", onUndici);
    },
  };
}

describe("the gateway's outgoing traffic", () => {
  let gateway: LightGateway | undefined;
  afterEach(async () => {
    await gateway?.stop();
  });

  it("should reach only its subgraphs: no usage report to Apollo, no cloud metadata probes", async () => {
    const outgoing = recordOutgoingHosts();
    try {
      gateway = await startLightGateway();
      const reply = await graphqlRequest(gateway.url, "{ __typename }");
      expect(reply.status).toBe(200);
      // The request to the gateway itself is on loopback too; something must have been seen, or
      // the recorder would prove nothing.
      expect(outgoing.hosts.length).toBeGreaterThan(0);
      expect(
        outgoing.hosts.filter((host) => !["127.0.0.1", "localhost", "::1", "[::1]"].includes(host)),
      ).toEqual([]);
    } finally {
      outgoing.stop();
    }
  });
});

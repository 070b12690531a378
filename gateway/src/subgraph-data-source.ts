import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from "@apollo/gateway";
import { REQUEST_ID_HEADER, type RequestContextBase } from "@hv/kit";

/** Every fetch to a subgraph carries the client request's id, so one id ties all log lines together. */
export class SubgraphDataSource extends RemoteGraphQLDataSource<RequestContextBase> {
  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<RequestContextBase>): void {
    if ("requestId" in context && typeof context.requestId === "string") {
      request.http?.headers.set(REQUEST_ID_HEADER, context.requestId);
    }
  }
}

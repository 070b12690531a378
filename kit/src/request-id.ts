import { randomUUID } from "node:crypto";

/** Travels from the client (optional) through the gateway to every subgraph and into every log line. */
export const REQUEST_ID_HEADER = "x-request-id";

const ACCEPTABLE = /^[A-Za-z0-9._:-]{8,128}$/;

/** A new request id, as one flat string (randomUUID's is a rope of a dozen strings, held as long as the id). */
function newRequestId(): string {
  return Buffer.from(randomUUID(), "latin1").toString("latin1");
}

/** Keep a caller's id when it is well-formed, otherwise make one; never trust arbitrary text into logs. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && ACCEPTABLE.test(value) ? value : newRequestId();
}

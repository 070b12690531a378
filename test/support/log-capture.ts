import { Writable } from "node:stream";
import { createLogger, type Logger } from "@hv/kit";

export interface LogLine {
  service: string;
  level: string;
  msg: string;
  requestId?: string;
  [field: string]: unknown;
}

/** A real logger whose JSON lines are kept in memory, so tests can read what a process logged. */
export function capturingLogger(service: string, level = "info"): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const text of chunk.toString("utf8").split("\n")) {
        if (text.trim() !== "") lines.push(JSON.parse(text) as LogLine);
      }
      callback();
    },
  });
  return { logger: createLogger({ service, level, destination }), lines };
}

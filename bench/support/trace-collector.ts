/**
 * An OTLP/HTTP (JSON) trace receiver inside a bench: the services run with tracing on
 * (OTEL_EXPORTER_OTLP_ENDPOINT = this receiver, see kit/src/tracing.ts) and the bench starts each
 * traced request itself with a `traceparent` header, so every span of that request, in every
 * process, lands here under the bench's trace id. Times are wall-clock (epoch) milliseconds, as the
 * SDK stamps them, comparable across the processes of one machine.
 */
import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { percentile } from "./args";

export interface CollectedSpan {
  service: string;
  name: string;
  spanId: string;
  parentSpanId: string;
  /** Epoch ms. */
  start: number;
  end: number;
  attributes: Record<string, unknown>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: Array<{ key: string; value: OtlpValue }>;
}
interface OtlpBody {
  resourceSpans?: Array<{
    resource?: { attributes?: Array<{ key: string; value: OtlpValue }> };
    scopeSpans?: Array<{ spans?: OtlpSpan[] }>;
  }>;
}

const valueOf = (v: OtlpValue): unknown => v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue;
const nanosToMs = (n: string | number) => Number(BigInt(n) / 1000n) / 1000;

/**
 * The environment that points a service's tracing here, with a batch queue large enough for 100s
 * of sends a second. Only traces the bench starts are recorded (a root span, e.g. a subscription
 * event's fetch or a relay's poll, is not sampled): the services spend little on tracing.
 */
export function tracingEnv(endpoint: string): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
    OTEL_TRACES_SAMPLER_ARG: "0",
    OTEL_BSP_MAX_QUEUE_SIZE: "200000",
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: "4000",
    OTEL_BSP_SCHEDULE_DELAY: "500",
  };
}

/** Epoch ms now, on the same clock as the SDK's span times. */
export const epochMs = () => performance.timeOrigin + performance.now();

export async function startTraceCollector() {
  const traces = new Map<string, CollectedSpan[]>();
  let received = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpBody;
        for (const resource of body.resourceSpans ?? []) {
          const service = String(
            valueOf(resource.resource?.attributes?.find((a) => a.key === "service.name")?.value ?? {}) ?? "?",
          );
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans ?? []) {
              received += 1;
              const list = traces.get(span.traceId) ?? [];
              list.push({
                service,
                name: span.name,
                spanId: span.spanId,
                parentSpanId: span.parentSpanId ?? "",
                start: nanosToMs(span.startTimeUnixNano),
                end: nanosToMs(span.endTimeUnixNano),
                attributes: Object.fromEntries((span.attributes ?? []).map((a) => [a.key, valueOf(a.value)])),
              });
              traces.set(span.traceId, list);
            }
        }
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** A new trace id and the `traceparent` that makes it the root of a request's spans (sampled). */
    newTrace(): { traceId: string; traceparent: string } {
      const traceId = randomBytes(16).toString("hex");
      return { traceId, traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` };
    },
    spansOf: (traceId: string) => traces.get(traceId) ?? [],
    received: () => received,
    clear: () => traces.clear(),
    close: () => server.close(),
  };
}

/** One traced send: when the bench sent it and got the answer (epoch ms) and its spans. */
export interface TracedRequest {
  label: string;
  traceId: string;
  sentAt: number;
  answeredAt: number;
  spans: CollectedSpan[];
}

/** A span's stage name: service and span name, with ids and SQL cut to their first words. */
function stageOf(span: CollectedSpan): string {
  const statement = span.attributes["db.statement"] ?? span.attributes["db.query.text"];
  const name =
    typeof statement === "string"
      ? `${span.name} ${statement.replace(/\s+/g, " ").slice(0, 40)}`
      : span.name.replace(/[0-9a-f-]{36}/g, "<id>");
  return `${span.service}: ${name}`;
}

/**
 * Where traced requests spent their time: for every stage (service + span), the sends' p50 and p99
 * of its duration; then the slowest requests one by one, each span as its start after the send and
 * its duration, so a fixed wait (the same long span in many slow sends) stands out.
 */
export function describeTraces(requests: TracedRequest[], slowest = 8): string {
  const lines: string[] = [];
  const total = (r: TracedRequest) => r.answeredAt - r.sentAt;
  const sorted = [...requests].sort((a, b) => total(a) - total(b));
  const stages = new Map<string, number[]>();
  for (const request of sorted) {
    const perStage = new Map<string, number>();
    for (const span of request.spans)
      perStage.set(stageOf(span), (perStage.get(stageOf(span)) ?? 0) + (span.end - span.start));
    // Before the gateway saw it, and after the gateway answered: the client and the sockets between.
    const server = request.spans.find(
      (s) => s.service === "gateway" && s.parentSpanId && s.name.startsWith("POST"),
    );
    if (server) {
      perStage.set("bench → gateway's HTTP span start", server.start - request.sentAt);
      perStage.set("gateway's HTTP span end → bench", request.answeredAt - server.end);
    }
    for (const [stage, ms] of perStage) stages.set(stage, [...(stages.get(stage) ?? []), ms]);
  }
  const traced = sorted.filter((r) => r.spans.length > 0).length;
  lines.push(`traced sends: ${requests.length}, with spans ${traced}; per stage (summed per send), ms:`);
  const rows = [...stages.entries()]
    .map(([stage, values]) => {
      values.sort((a, b) => a - b);
      return {
        stage,
        n: values.length,
        p50: percentile(values, 50),
        p99: percentile(values, 99),
        max: values.at(-1)!,
      };
    })
    .sort((a, b) => b.p99 - a.p99);
  for (const row of rows.slice(0, 25))
    lines.push(
      `    ${row.stage}: n ${row.n}, p50 ${row.p50.toFixed(1)}, p99 ${row.p99.toFixed(1)}, max ${row.max.toFixed(1)}`,
    );
  // Which stages the slowest 2 % of sends went through, against the share of all sends that did:
  // a stage only slow sends pass (a new connection, a cold cache) shows here.
  const tail = sorted.slice(-Math.max(1, Math.ceil(sorted.length / 50)));
  const share = (list: TracedRequest[], stage: string) =>
    list.filter((r) => r.spans.some((span) => stageOf(span) === stage)).length / Math.max(1, list.length);
  const tailStages = new Set(tail.flatMap((r) => r.spans.map(stageOf)));
  const overRepresented = [...tailStages]
    .map((stage) => ({ stage, inTail: share(tail, stage), inAll: share(sorted, stage) }))
    .filter((row) => row.inTail > row.inAll * 1.5)
    .sort((a, b) => b.inTail / Math.max(0.001, b.inAll) - a.inTail / Math.max(0.001, a.inAll));
  lines.push(
    `  stages in more of the slowest ${tail.length} sends (≥ ${total(tail[0]!).toFixed(0)} ms) than of all: ${
      overRepresented.length
        ? overRepresented
            .slice(0, 10)
            .map((r) => `${r.stage} ${(r.inTail * 100).toFixed(0)} % vs ${(r.inAll * 100).toFixed(0)} %`)
            .join("; ")
        : "none"
    }`,
  );
  lines.push(`  the ${slowest} slowest sends (span: start after the send +ms, duration ms):`);
  for (const request of sorted.slice(-slowest).reverse()) {
    lines.push(`    ${request.label} (trace ${request.traceId}): ${total(request).toFixed(1)} ms`);
    const spans = [...request.spans].sort((a, b) => a.start - b.start);
    for (const span of spans.slice(0, 40))
      lines.push(
        `      +${(span.start - request.sentAt).toFixed(1)} ${(span.end - span.start).toFixed(1)} ${stageOf(span)}`,
      );
  }
  return lines.join("\n");
}

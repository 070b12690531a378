import http from "node:http";
import type { AddressInfo } from "node:net";
import { trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { capturingLogger } from "../../test/support/log-capture";
import { shutdownTracing, startTracing, tracesExporterFrom } from "./tracing";

describe("tracing", () => {
  it("should be off unless an OTLP endpoint or OTEL_TRACES_EXPORTER asks for it", () => {
    expect(tracesExporterFrom({})).toBe("none");
    expect(tracesExporterFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toBe("otlp");
    expect(
      tracesExporterFrom({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" }),
    ).toBe("otlp");
    expect(tracesExporterFrom({ OTEL_TRACES_EXPORTER: "console" })).toBe("console");
    expect(
      tracesExporterFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" }),
    ).toBe("none");
    expect(() => tracesExporterFrom({ OTEL_TRACES_EXPORTER: "zipkin" })).toThrow(/OTEL_TRACES_EXPORTER/);
    expect(startTracing("test", { env: {} })).toBeNull();
  });

  describe("with an in-memory exporter", () => {
    const exporter = new InMemorySpanExporter();
    beforeAll(() => {
      startTracing("kit-test", { env: {}, spanProcessors: [new SimpleSpanProcessor(exporter)] });
    });
    afterAll(() => shutdownTracing());

    it("should stamp log lines written inside a span with its trace and span id, and none outside", async () => {
      const { logger, lines } = capturingLogger("kit-test");
      const span = trace.getTracer("kit-test").startActiveSpan("work", (active) => {
        logger.info("inside");
        active.end();
        return active;
      });
      logger.info("outside");
      const inside = lines.find((line) => line.msg === "inside");
      expect(inside).toMatchObject({
        traceId: span.spanContext().traceId,
        spanId: span.spanContext().spanId,
      });
      expect(lines.find((line) => line.msg === "outside")).not.toHaveProperty("traceId");
      for (let tries = 0; tries < 50 && exporter.getFinishedSpans().length === 0; tries += 1)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(exporter.getFinishedSpans().map((finished) => finished.name)).toContain("work");
    });

    it("should send W3C traceparent on fetch (undici) from inside a span", async () => {
      const seen: Array<string | undefined> = [];
      const server = http.createServer((req, res) => {
        seen.push(req.headers.traceparent as string | undefined);
        res.end("ok");
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const traceId = await trace.getTracer("kit-test").startActiveSpan("outgoing", async (active) => {
          await (await fetch(`http://127.0.0.1:${port}/`)).text();
          active.end();
          return active.spanContext().traceId;
        });
        expect(seen[0]).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  });
});

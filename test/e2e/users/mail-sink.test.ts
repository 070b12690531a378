import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createTransport } from "nodemailer";
import { startMailSink } from "../../../scripts/mail-sink";
import { waitFor } from "../../support/wait";

describe("the development mail sink (scripts/mail-sink.ts)", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hv-mail-sink-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("should write every mail it is sent to an .eml file, and take a free port when its own is taken", async () => {
    const first = await startMailSink({ dir, host: "127.0.0.1", port: 0 });
    const port = Number(new URL(first.url).port);
    const second = await startMailSink({ dir, host: "127.0.0.1", port });
    try {
      expect(new URL(second.url).port).not.toBe(String(port));
      const transport = createTransport({ url: second.url });
      await transport.sendMail({
        from: "app@example.test",
        to: "ada@example.test",
        subject: "Reset your password",
        text: "https://app.example/reset-password?token=at_x",
      });
      transport.close();
      await waitFor("an .eml file", () => readdirSync(dir).some((name) => name.endsWith(".eml")));
      const [file] = readdirSync(dir).filter((name) => name.endsWith(".eml"));
      const raw = readFileSync(path.join(dir, file!), "utf8");
      expect(raw).toMatch(/^Subject: Reset your password$/m);
      expect(raw).toContain("https://app.example/reset-password?token=at_x");
    } finally {
      await second.close();
      await first.close();
    }
  });
});

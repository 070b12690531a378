import { createWriteStream, mkdirSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { SMTPServer } from "smtp-server";

export interface MailSink {
  /** `smtp://host:port`, for MAIL_SMTP_URL. */
  url: string;
  close(): Promise<void>;
}

function listen(server: SMTPServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // smtp-server re-emits its socket server's errors (EADDRINUSE) on itself.
    const onError = (error: Error) => reject(error);
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/**
 * Development only: a catch-all SMTP server that accepts every mail and writes it, as it arrived,
 * to `<dir>/<time>-<n>.eml` (open with any mail program, or read as text). Takes `port`, or any
 * free port when that one is taken.
 */
export async function startMailSink(options: { dir: string; host: string; port: number }): Promise<MailSink> {
  mkdirSync(options.dir, { recursive: true });
  let count = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, _session, callback) {
      count += 1;
      const file = path.join(options.dir, `${new Date().toISOString().replace(/[:.]/g, "-")}-${count}.eml`);
      pipeline(stream, createWriteStream(file)).then(() => callback(), callback);
    },
  });
  try {
    await listen(server, options.port, options.host);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
    await listen(server, 0, options.host);
  }
  server.on("error", (error: Error) => console.error(`mail sink: ${error.message}`));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://${options.host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

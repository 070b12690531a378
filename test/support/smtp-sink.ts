import type { AddressInfo } from "node:net";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { waitFor } from "./wait";

export interface CapturedMail {
  to: string;
  /** The From address (without its display name). */
  from: string;
  subject: string;
  text: string;
}

export interface SmtpSink {
  /** `smtp://127.0.0.1:<port>` for MAIL_SMTP_URL. */
  url: string;
  mails: CapturedMail[];
  /** Deliveries refused so far (each a try the worker made). */
  refusals: number;
  /** Refuse the next `count` mails with this SMTP reply code (4xx: try later, 5xx: never). */
  refuseNext(count: number, code?: number): void;
  /** The first mail to `to` matching `subject`, waiting for it. */
  waitForMail(to: string, subject: RegExp, timeoutMs?: number): Promise<CapturedMail>;
  close(): Promise<void>;
}

/**
 * A real SMTP server (the `smtp-server` package) on a free loopback port: takes every mail, parses
 * it with mailparser and keeps it, or refuses it on demand, as a mail provider would.
 */
export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: CapturedMail[] = [];
  let refuse = { count: 0, code: 451 };
  const sink: Partial<SmtpSink> & { refusals: number } = { refusals: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onMailFrom(_address, _session, callback) {
      if (refuse.count > 0) {
        refuse.count -= 1;
        sink.refusals += 1;
        const error = Object.assign(
          new Error(refuse.code < 500 ? "Try again later" : "Mailbox unavailable"),
          { responseCode: refuse.code },
        );
        callback(error);
        return;
      }
      callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          for (const recipient of session.envelope.rcptTo) {
            mails.push({
              to: recipient.address,
              from: parsed.from?.value[0]?.address ?? "",
              subject: parsed.subject ?? "",
              text: parsed.text ?? "",
            });
          }
          callback();
        })
        .catch((error: Error) => callback(error));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.server.address() as AddressInfo;
  return Object.assign(sink, {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    refuseNext(count: number, code = 451) {
      refuse = { count, code };
    },
    async waitForMail(to: string, subject: RegExp, timeoutMs = 30_000) {
      let found: CapturedMail | undefined;
      await waitFor(
        `a mail to ${to} about ${subject}`,
        () => (found = mails.find((mail) => mail.to === to && subject.test(mail.subject))) !== undefined,
        timeoutMs,
      );
      return found!;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }) as SmtpSink;
}

/** The token of the first link in a mail that points at `path` under the app's link base. */
export function tokenFromMail(mail: CapturedMail, linkBase: string, path: string): string {
  const escaped = `${linkBase}/${path}`.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  const match = new RegExp(`${escaped}\\?token=([A-Za-z0-9_%-]+)`).exec(mail.text);
  if (!match?.[1]) throw new Error(`no ${path} link in: ${mail.text}`);
  return decodeURIComponent(match[1]);
}

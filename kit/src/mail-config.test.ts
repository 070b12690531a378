import { loadMailConfig } from "./config";

describe("account mail configuration", () => {
  it("should refuse to start in production without an SMTP server or a link base, naming the variable", () => {
    expect(() =>
      loadMailConfig({ NODE_ENV: "production", APP_LINK_BASE_URL: "https://app.example" }),
    ).toThrow(/MAIL_SMTP_URL is required in production/);
    expect(() =>
      loadMailConfig({ NODE_ENV: "production", MAIL_SMTP_URL: "smtps://u:p@smtp.example:465" }),
    ).toThrow(/APP_LINK_BASE_URL is required in production/);
  });

  it("should use the local sink and a local link base outside production", () => {
    expect(loadMailConfig({})).toMatchObject({
      smtpUrl: "smtp://127.0.0.1:2525",
      linkBaseUrl: "http://localhost:8081",
      maxAttempts: 12,
      retryBaseMs: 5000,
    });
  });

  it("should refuse a URL that is not SMTP, and never echo the SMTP URL (it holds a password)", () => {
    expect(() => loadMailConfig({ MAIL_SMTP_URL: "https://user:secret@mail.example" })).toThrow(
      /^Invalid environment variable MAIL_SMTP_URL: the scheme must be smtp:/,
    );
    expect(() => loadMailConfig({ MAIL_SMTP_URL: "https://user:secret@mail.example" })).not.toThrow(/secret/);
  });

  it("should drop a trailing slash of the link base", () => {
    expect(loadMailConfig({ APP_LINK_BASE_URL: "https://app.example/links/" }).linkBaseUrl).toBe(
      "https://app.example/links",
    );
  });
});

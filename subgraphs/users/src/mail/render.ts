import type { MailJob } from "./jobs";

export interface RenderedMail {
  subject: string;
  text: string;
}

/** How long each emailed token works; the resolvers set the same expiry in the database. */
export const TOKEN_TTL_MINUTES = {
  VERIFY_EMAIL: 24 * 60,
  RESET_PASSWORD: 30,
  CHANGE_EMAIL: 60,
} as const;

/** `ada@example.com` -> `a***@example.com`: enough for the owner to recognise, little for anyone else. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf("@");
  return `${email.slice(0, Math.min(1, at))}***${email.slice(at)}`;
}

const link = (base: string, path: string, token: string) =>
  `${base}/${path}?token=${encodeURIComponent(token)}`;

const hours = (minutes: number) =>
  minutes % 60 === 0 && minutes >= 60
    ? `${minutes / 60} hour${minutes === 60 ? "" : "s"}`
    : `${minutes} minutes`;

/**
 * The subject and plain-text body of each account mail. Plain text only, and no text a person
 * typed: nothing in a mail can be made to look like it came from us.
 */
export function renderMail(job: MailJob, linkBaseUrl: string): RenderedMail {
  switch (job.kind) {
    case "verify_email":
      return {
        subject: "Confirm your email address",
        text: [
          "Open this link on your phone to confirm your email address and sign in:",
          "",
          link(linkBaseUrl, "verify-email", job.token),
          "",
          `The link works once, for ${hours(TOKEN_TTL_MINUTES.VERIFY_EMAIL)}.`,
          "If you did not sign up, ignore this mail: without it no account is opened for your address.",
        ].join("\n"),
      };
    case "already_registered":
      return {
        subject: "You already have an account",
        text: [
          "Someone, perhaps you, tried to sign up with this email address, which already has an account.",
          "",
          "To sign in, use your password. Forgot it? Reset it here:",
          `${linkBaseUrl}/forgot-password`,
          "",
          "If it was not you, ignore this mail: nothing has changed.",
        ].join("\n"),
      };
    case "reset_password":
      return {
        subject: "Reset your password",
        text: [
          "Open this link on your phone to choose a new password:",
          "",
          link(linkBaseUrl, "reset-password", job.token),
          "",
          `The link works once, for ${hours(TOKEN_TTL_MINUTES.RESET_PASSWORD)}. Resetting signs you out everywhere else.`,
          "If you did not ask for it, ignore this mail: your password stays as it is.",
        ].join("\n"),
      };
    case "confirm_email_change":
      return {
        subject: "Confirm your new email address",
        text: [
          "Open this link on your phone to make this address your account's email address:",
          "",
          link(linkBaseUrl, "confirm-email", job.token),
          "",
          `The link works once, for ${hours(TOKEN_TTL_MINUTES.CHANGE_EMAIL)}.`,
          "If you did not ask for it, ignore this mail: nothing changes.",
        ].join("\n"),
      };
    case "email_change_address_taken":
      return {
        subject: "Someone tried to use your email address",
        text: [
          "Someone asked to move another account to this email address, which already has an account.",
          "Nothing has changed. If it was you, sign in to the account that uses this address instead.",
        ].join("\n"),
      };
    case "email_changed":
      return {
        subject: "Your email address was changed",
        text: [
          `Your account's email address is now ${maskEmail(job.newEmail)}. Mails about your account go there from now on.`,
          "",
          "If you did not do this, reset your password and contact support:",
          `${linkBaseUrl}/forgot-password`,
        ].join("\n"),
      };
  }
}

/** A missing or invalid setting; the message names the variable (never a secret value). */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** A configuration value that cannot be used: the message names the variable, never its value. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

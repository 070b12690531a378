import type { MediaWorkerConfig } from "./config";

/**
 * What the sandboxed processor needs of the worker's config, and nothing more: it travels in the
 * child's environment, so the grant secret, the URL secret of another driver, ports and the like
 * stay in the parent. (The database URL and storage credentials are needed to do the job.)
 */
export type ProcessorSettings = Pick<
  MediaWorkerConfig,
  | "logLevel"
  | "databaseUrl"
  | "redis"
  | "eventsPrefix"
  | "storage"
  | "limits"
  | "ffmpegPath"
  | "ffprobePath"
  | "processingTimeoutSeconds"
  | "uploadGraceSeconds"
>;

export function processorSettings(config: MediaWorkerConfig): ProcessorSettings {
  const {
    logLevel,
    databaseUrl,
    redis,
    eventsPrefix,
    storage,
    limits,
    ffmpegPath,
    ffprobePath,
    processingTimeoutSeconds,
    uploadGraceSeconds,
  } = config;
  return {
    logLevel,
    databaseUrl,
    redis,
    eventsPrefix,
    storage,
    limits,
    ffmpegPath,
    ffprobePath,
    processingTimeoutSeconds,
    uploadGraceSeconds,
  };
}

/** The child's environment: what Node needs to run, plus the settings; none of the parent's secrets. */
export function processorEnvironment(
  config: MediaWorkerConfig,
  from: NodeJS.ProcessEnv,
  variable: string,
): NodeJS.ProcessEnv {
  const keep = ["PATH", "HOME", "TMPDIR", "TZ", "LANG", "NODE_ENV", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS"];
  const env: NodeJS.ProcessEnv = {};
  for (const name of keep) if (from[name] !== undefined) env[name] = from[name];
  env[variable] = JSON.stringify(processorSettings(config));
  return env;
}

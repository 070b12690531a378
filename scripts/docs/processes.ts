import {
  generateSigningKeyJwk,
  loadDiscoveryConfig,
  loadGatewayConfig,
  loadSubgraphConfig,
  loadUsersConfig,
  SUBGRAPH_NAMES,
  type SubgraphName,
} from "@hv/kit";
import { loadChatConfig } from "@hv/chat/src/config";
import { loadMediaConfig, loadMediaWorkerConfig } from "@hv/media/src/config";
import { loadPushConfig } from "@hv/users/src/push/config";
import type { ProcessConfigReader } from "./config-reference";

/** Both storage drivers: each reads variables of its own. */
const MEDIA_PROBES = [{}, { MEDIA_STORAGE_DRIVER: "s3", MEDIA_S3_BUCKET: "probe-bucket" }];

/** A subgraph with kit's config alone: its entry calls `runMain(name, (env) => loadSubgraphConfig(name, env), start)`. */
function plainSubgraph(name: SubgraphName): ProcessConfigReader {
  return {
    name,
    title: `${name.charAt(0).toUpperCase()}${name.slice(1)} subgraph`,
    entry: `subgraphs/${name}/src/index.ts`,
    loader: "loadSubgraphConfig",
    load: (env) => loadSubgraphConfig(name, env),
    probes: [{}],
  };
}

/**
 * Every long-running process, in `npm start`'s order, with the loader its entry file runs: the
 * gateway, each subgraph of the registry (those with a loader of their own listed below), the
 * workers. A test checks each entry file still calls the loader named here.
 */
export function processConfigReaders(): ProcessConfigReader[] {
  // Given, so the users loader does not create a development key file while it is probed.
  const signingKeys = JSON.stringify([generateSigningKeyJwk("docs-probe")]);
  const ownLoaders: Partial<Record<SubgraphName, ProcessConfigReader>> = {
    users: {
      name: "users",
      title: "Users subgraph",
      entry: "subgraphs/users/src/index.ts",
      loader: "loadUsersConfig",
      load: (env) => loadUsersConfig(env),
      probes: [{ AUTH_SIGNING_KEYS: signingKeys }],
    },
    discovery: {
      name: "discovery",
      title: "Discovery subgraph",
      entry: "subgraphs/discovery/src/index.ts",
      loader: "loadDiscoveryConfig",
      load: loadDiscoveryConfig,
      probes: [{}],
    },
    chat: {
      name: "chat",
      title: "Chat subgraph",
      entry: "subgraphs/chat/src/index.ts",
      loader: "loadChatConfig",
      load: loadChatConfig,
      probes: [{}],
    },
    media: {
      name: "media",
      title: "Media subgraph",
      entry: "subgraphs/media/src/index.ts",
      loader: "loadMediaConfig",
      load: loadMediaConfig,
      probes: MEDIA_PROBES,
    },
  };
  return [
    {
      name: "gateway",
      title: "Gateway",
      entry: "gateway/src/index.ts",
      loader: "loadGatewayConfig",
      load: loadGatewayConfig,
      probes: [{}],
    },
    ...SUBGRAPH_NAMES.map((name) => ownLoaders[name] ?? plainSubgraph(name)),
    {
      name: "push-worker",
      title: "Push worker",
      entry: "subgraphs/users/src/push-worker.ts",
      loader: "loadPushConfig",
      load: loadPushConfig,
      probes: [{}],
    },
    {
      name: "media-worker",
      title: "Media worker",
      entry: "subgraphs/media/src/worker-main.ts",
      loader: "loadMediaWorkerConfig",
      load: loadMediaWorkerConfig,
      probes: MEDIA_PROBES,
    },
  ];
}

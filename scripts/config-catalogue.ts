import { CHAT_ENV } from "@hv/chat/src/env";
import { ENV_CATALOGUE, type EnvCatalogue } from "@hv/kit/src/config";
import { MEDIA_ENV } from "@hv/media/src/env";
import { PUSH_ENV } from "@hv/users/src/push/env";

/** Every process's variables: kit's and those chat, media and the push worker keep in their packages. */
export const ALL_ENV: EnvCatalogue = { ...ENV_CATALOGUE, ...CHAT_ENV, ...MEDIA_ENV, ...PUSH_ENV };

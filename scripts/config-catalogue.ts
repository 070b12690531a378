import { CHAT_ENV } from "@hv/chat/src/config";
import { ENV_CATALOGUE, type EnvCatalogue } from "@hv/kit";
import { MEDIA_ENV } from "@hv/media/src/config";
import { PUSH_ENV } from "@hv/users/src/push/config";

/** Every process's variables: kit's and those chat, media and the push worker keep in their packages. */
export const ALL_ENV: EnvCatalogue = { ...ENV_CATALOGUE, ...CHAT_ENV, ...MEDIA_ENV, ...PUSH_ENV };

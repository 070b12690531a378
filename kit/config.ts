// The config entry point: the catalogue and its helpers without the rest of kit (start-prod, docs).
export * from "./src/config";

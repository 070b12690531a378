export * from "./catalogue";
export * from "./outbox";
export * from "./relay";
export * from "./consumer";

export * from "./catalogue";
export * from "./outbox";
export * from "./relay";
export * from "./consumer";
export * from "./sql-outbox";
export * from "./outbox-notify";

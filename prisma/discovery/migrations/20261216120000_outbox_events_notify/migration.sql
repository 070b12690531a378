-- NOTIFY outbox_events when a transaction that wrote events commits: wakes the outbox relay
-- (kit/src/events/outbox-notify.ts).
CREATE FUNCTION "outbox_events_notify"() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN PERFORM pg_notify(''outbox_events'', '''')\073 RETURN NULL\073 END';

CREATE TRIGGER "outbox_events_notify" AFTER INSERT ON "outbox_events"
  FOR EACH ROW EXECUTE FUNCTION "outbox_events_notify"();

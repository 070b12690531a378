-- NOTIFY outbox_events when a transaction that wrote events commits: wakes the outbox relay
-- (kit/src/events/outbox-notify.ts). Not message.created: each send hands it to the relay itself.
CREATE FUNCTION "outbox_events_notify"() RETURNS trigger LANGUAGE plpgsql AS E'BEGIN PERFORM pg_notify(''outbox_events'', '''')\073 RETURN NULL\073 END';

CREATE TRIGGER "outbox_events_notify" AFTER INSERT ON "outbox_events"
  FOR EACH ROW WHEN (NEW.type <> 'message.created') EXECUTE FUNCTION "outbox_events_notify"();

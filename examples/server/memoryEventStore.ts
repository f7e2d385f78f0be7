import type { EventId, EventStore, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * In-memory event store, one per session, so that SSE streams can be resumed with
 * Last-Event-ID. Keeps at most `maxEvents` events (oldest dropped first).
 */
export class MemoryEventStore implements EventStore {
  #events = new Map<EventId, { streamId: StreamId; message: JSONRPCMessage }>();
  #counter = 0;
  #maxEvents: number;

  constructor(maxEvents = 1000) {
    this.#maxEvents = maxEvents;
  }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    const eventId = `${streamId}|${++this.#counter}`;
    this.#events.set(eventId, { streamId, message });
    if (this.#events.size > this.#maxEvents) {
      const oldest = this.#events.keys().next().value;
      if (oldest !== undefined) this.#events.delete(oldest);
    }
    return eventId;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    const separator = eventId.lastIndexOf('|');
    return separator > 0 ? eventId.slice(0, separator) : undefined;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const streamId = await this.getStreamIdForEventId(lastEventId);
    if (streamId === undefined) throw new Error(`Unknown event id: ${lastEventId}`);
    const after = Number(lastEventId.slice(streamId.length + 1));
    for (const [eventId, event] of this.#events) {
      if (event.streamId !== streamId) continue;
      if (Number(eventId.slice(streamId.length + 1)) <= after) continue;
      if (!('jsonrpc' in event.message)) continue; // priming events carry no message
      await send(eventId, event.message);
    }
    return streamId;
  }
}

/** A JSON-RPC message as a test reads it off an event stream. */
export type Message = { id?: number | string; method?: string; params?: any; result?: any; error?: any };

/** The JSON-RPC messages in the `data:` lines of whole SSE events. */
export function parseEvents(text: string): Message[] {
  return text
    .split('\n\n')
    .map((block) => block.split('\n').filter((line) => line.startsWith('data: ')).map((line) => line.slice(6)).join('\n'))
    .filter(Boolean)
    .map((data) => JSON.parse(data) as Message);
}

/** Appends each message of an event stream to `messages` as it arrives; resolves when the stream ends or is aborted. */
export async function collectEvents(body: AsyncIterable<Uint8Array>, messages: Message[]): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of body) {
      buffered += decoder.decode(chunk, { stream: true });
      const end = buffered.lastIndexOf('\n\n');
      if (end < 0) continue;
      messages.push(...parseEvents(buffered.slice(0, end)));
      buffered = buffered.slice(end + 2);
    }
  } catch {
    // The test aborted the request.
  }
}

/** A conversation's event stream held open with fetch: what arrived so far, and whether the server has ended it. */
export class OpenEventStream {
  text = '';
  /** The server ended the response (not this client). */
  ended = false;

  private constructor(private readonly controller: AbortController) {}

  /** Resolves once the server has answered 200 and sent the stream's head; rejects with the status otherwise. */
  static async open(baseUrl: string, conversationId: string, headers: Record<string, string>): Promise<OpenEventStream> {
    const controller = new AbortController();
    const response = await fetch(`${baseUrl}/api/conversations/${conversationId}/events`, {
      headers: { ...headers, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    if (response.status !== 200 || !response.body) throw new Error(`event stream answered ${response.status}: ${await response.text()}`);
    const stream = new OpenEventStream(controller);
    const body = response.body;
    void (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of body) stream.text += decoder.decode(chunk as Uint8Array, { stream: true });
        stream.ended = true;
      } catch {
        // closed by this client
      }
    })();
    return stream;
  }

  /** The last complete event: its type and parsed data. */
  lastEvent(): { event: string; data: any } | null {
    const blocks = this.text.split('\n\n').slice(0, -1).reverse();
    for (const block of blocks) {
      const lines = block.split('\n');
      const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(5).trim());
      if (data.length === 0) continue;
      const event = lines.find((line) => line.startsWith('event:'))?.slice(6).trim() ?? 'message';
      return { event, data: JSON.parse(data.join('\n')) };
    }
    return null;
  }

  close(): void {
    this.controller.abort();
  }
}

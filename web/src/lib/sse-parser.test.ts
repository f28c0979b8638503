import { describe, expect, it } from 'vitest';
import { SseParser } from './sse-parser.ts';

describe('SseParser', () => {
  it('parses messages split across chunks at any point', () => {
    const stream = 'retry: 2000\n\n: ping\n\nid: 7\nevent: message.delta\ndata: {"seq":7}\n\nid: 8\r\nevent: turn.ended\r\ndata: a\r\ndata: b\r\n\r\n';
    for (let size = 1; size <= stream.length; size += 1) {
      const parser = new SseParser();
      const messages = [];
      for (let index = 0; index < stream.length; index += size) messages.push(...parser.push(stream.slice(index, index + size)));
      expect(messages, `chunk size ${size}`).toEqual([
        { id: '7', event: 'message.delta', data: '{"seq":7}' },
        { id: '8', event: 'turn.ended', data: 'a\nb' },
      ]);
    }
  });

  it('gives a message without an id a null id', () => {
    expect(new SseParser().push('event: error\ndata: {"code":"INTERNAL"}\n\n')).toEqual([{ id: null, event: 'error', data: '{"code":"INTERNAL"}' }]);
  });
});

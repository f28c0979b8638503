/**
 * The scripted model in its own process, so that its work (parsing ~80 KB request bodies, recording
 * them) neither runs on the measured server's event loop nor counts in its memory, as with the real API.
 * Every message request gets an immediate two-chunk text reply, unless it asks for a stream (`STREAM <n>x<ms>`). Prints `{"url": …}` on one stdout line
 * once listening; exits when stdin closes or on SIGTERM.
 */
import { startScriptedModel, text } from '../test/support/scripted-model.ts';

const model = await startScriptedModel({
  script: (request) => {
    // `STREAM <n>x<ms>` in the message (bench/replicas.ts): n text deltas `ms` apart.
    const stream = /STREAM (\d+)x(\d+)/.exec(request.lastUserText);
    if (stream) return text(Array.from({ length: Number(stream[1]) }, (_, index) => `w${index} `), { delayMs: Number(stream[2]) });
    return text(['Hello from the scripted model. ', 'This is the benchmark reply.']);
  },
});

// Recorded requests are not needed here; drop them so a long run does not grow.
const forget = setInterval(() => (model.requests.length = 0), 1000);

let closing = false;
const shutdown = async (): Promise<void> => {
  if (closing) return;
  closing = true;
  clearInterval(forget);
  await model.close();
  process.exit(0);
};
process.stdin.on('end', () => void shutdown());
process.stdin.on('error', () => void shutdown());
process.stdin.resume();
process.on('SIGTERM', () => void shutdown());

process.stdout.write(`${JSON.stringify({ url: model.url })}\n`);

/** The title a conversation has until its first message names it. */
export const untitledConversation = 'New conversation';

/** The longest title taken from a message, in characters (an ellipsis follows when it was cut). */
export const maxTitleChars = 60;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * A conversation's title from its first message: the first line with any text, its whitespace collapsed, cut at a
 * word boundary to at most `maxChars` characters plus an ellipsis. Null when the message has no text.
 */
export function titleFromMessage(message: string, maxChars = maxTitleChars): string | null {
  const line = message
    .split(/\r\n|\r|\n/)
    .map((candidate) => candidate.replace(/\s+/g, ' ').trim())
    .find((candidate) => candidate !== '');
  if (!line) return null;
  // Characters as a reader counts them, so that an emoji or an accented letter is never cut in half.
  const characters = Array.from(graphemes.segment(line), (part) => part.segment);
  if (characters.length <= maxChars) return line;
  // The last space that keeps at most maxChars characters; a space right after them is a boundary too.
  let cut = -1;
  for (let index = Math.min(maxChars, characters.length - 1); index > 0; index--) {
    if (characters[index] === ' ') {
      cut = index;
      break;
    }
  }
  // One very long word (a URL, a path) is cut where it must be, rather than leaving a stub of a title.
  if (cut < maxChars / 2) cut = maxChars;
  const slice = characters.slice(0, cut).join('');
  // Trailing punctuation before the ellipsis reads badly ("word,…"), unless it is all there is.
  return `${slice.replace(/[\s.,;:!?…-]+$/u, '') || slice}…`;
}

import { describe, expect, it } from 'vitest';
import { maxTitleChars, titleFromMessage } from './conversation-title.ts';

describe('titleFromMessage', () => {
  it('keeps a short message as it is', () => {
    expect(titleFromMessage('Fix the login bug')).toBe('Fix the login bug');
  });

  it('takes the first line with text and collapses its whitespace', () => {
    expect(titleFromMessage('\n  \n  Write   a\tparser  \nfor the config file\n')).toBe('Write a parser');
    expect(titleFromMessage('first line\r\nsecond line')).toBe('first line');
  });

  it('cuts a long line at a word boundary and adds an ellipsis', () => {
    const message = 'Please refactor the payment module so that every provider shares one retry policy and one logger';
    const title = titleFromMessage(message)!;
    expect(title).toBe('Please refactor the payment module so that every provider…');
    expect(title.length).toBeLessThanOrEqual(maxTitleChars + 1);
    expect(message.startsWith(title.slice(0, -1))).toBe(true);
  });

  it('uses a space just after the limit as the boundary, and drops punctuation before the ellipsis', () => {
    const fiftyNine = `${'abcd '.repeat(11)}wxyz`;
    expect(titleFromMessage(`${fiftyNine}q tail`)).toBe(`${fiftyNine}q…`);
    expect(titleFromMessage(`${'word '.repeat(10)}comma, ${'more '.repeat(10)}`)).toBe(`${'word '.repeat(10)}comma…`);
  });

  it('cuts one very long word where it must', () => {
    const url = `https://example.com/${'a'.repeat(100)}`;
    expect(titleFromMessage(url)).toBe(`${url.slice(0, maxTitleChars)}…`);
    expect(titleFromMessage(`see ${url}`)).toBe(`see ${url.slice(0, maxTitleChars - 4)}…`);
    expect(titleFromMessage('.'.repeat(80))).toBe(`${'.'.repeat(maxTitleChars)}…`);
  });

  it('never splits an emoji or a combined character', () => {
    const family = '👨‍👩‍👧';
    const title = titleFromMessage(family.repeat(70))!;
    expect(title).toBe(`${family.repeat(maxTitleChars)}…`);
  });

  it('has no title for a message without text', () => {
    expect(titleFromMessage('')).toBeNull();
    expect(titleFromMessage(' \n\t\n ')).toBeNull();
  });
});

import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { Icon } from './icons.tsx';

/** The message box: Enter sends, Shift+Enter adds a line; Stop interrupts the running turn. */
export function Composer({
  running,
  disabled,
  onSend,
  onStop,
  draft,
}: {
  running: boolean;
  disabled: boolean;
  onSend(text: string): Promise<boolean>;
  onStop(): void;
  /** Text put into the box from outside (Retry). */
  draft: { text: string; version: number } | null;
}) {
  const [text, setText] = useState('');
  const [sending, setSending] = useState(false);
  const ref = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (!draft) return;
    setText(draft.text);
    ref.current?.focus();
  }, [draft]);

  useEffect(() => {
    const area = ref.current;
    if (!area) return;
    area.style.height = 'auto';
    area.style.height = `${Math.min(area.scrollHeight, 240)}px`;
  }, [text]);

  const send = async (): Promise<void> => {
    const message = text;
    if (!message.trim() || sending) return;
    setSending(true);
    setText('');
    const sent = await onSend(message);
    if (!sent) setText(message);
    setSending(false);
    ref.current?.focus();
  };

  const keyDown = (event: KeyboardEvent<HTMLTextAreaElement>): void => {
    if (event.key === 'Enter' && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void send();
    }
  };

  return (
    <form
      className="composer"
      onSubmit={(event) => {
        event.preventDefault();
        void send();
      }}
    >
      <textarea
        ref={ref}
        rows={1}
        value={text}
        disabled={disabled}
        placeholder={running ? 'Queue another message…' : 'Message the agent… (Enter sends, Shift+Enter for a new line)'}
        aria-label="Message"
        onChange={(event) => setText(event.target.value)}
        onKeyDown={keyDown}
      />
      {running ? (
        <button type="button" className="button danger" onClick={onStop} aria-label="Stop the running turn">
          <Icon name="stop" /> Stop
        </button>
      ) : null}
      <button type="submit" className="button primary" disabled={disabled || sending || !text.trim()} aria-label="Send">
        <Icon name="send" /> <span className="only-wide">Send</span>
      </button>
    </form>
  );
}

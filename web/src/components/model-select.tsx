import { useEffect, useState } from 'react';
import { api } from '../api/client.ts';
import type { ModelChoices } from '../api/types.ts';
import { modelOptionLabel } from '../lib/usage-format.ts';

const custom = '__custom__';
let choices: Promise<ModelChoices> | null = null;

/** The installation's model list, asked for once per page load. */
function loadChoices(): Promise<ModelChoices> {
  choices ??= api.models().catch((error: unknown) => {
    choices = null;
    throw error;
  });
  return choices;
}

/** Picks an agent's model from the installation's list (GET /api/models); "Custom…" reveals a box for any other id. */
export function ModelSelect({ value, onChange }: { value: string; onChange(model: string): void }) {
  const [models, setModels] = useState<ModelChoices['models'] | null>(null);
  const [typing, setTyping] = useState(false);

  useEffect(() => {
    let current = true;
    loadChoices().then(
      (loaded) => current && setModels(loaded.models),
      () => current && setModels([]),
    );
    return () => {
      current = false;
    };
  }, []);

  const listed = models?.some((model) => model.id === value) ?? true;
  const customShown = typing || !listed;
  const options = models ?? [{ id: value, price: null }];
  return (
    <>
      <label>
        Model
        <select
          aria-label="Model"
          value={customShown ? custom : value}
          onChange={(event) => {
            const choice = event.target.value;
            setTyping(choice === custom);
            if (choice !== custom) onChange(choice);
          }}
        >
          {options.map((model) => (
            <option key={model.id} value={model.id}>
              {modelOptionLabel(model)}
            </option>
          ))}
          <option value={custom}>Custom…</option>
        </select>
      </label>
      {customShown ? (
        <label>
          Model id
          <input required value={value} onChange={(event) => onChange(event.target.value)} placeholder="claude-…" autoFocus={typing} maxLength={200} />
        </label>
      ) : null}
    </>
  );
}

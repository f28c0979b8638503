export { createLocalProvider, LocalProvider, type LimitEnforcement, type LocalProviderOptions } from './local-provider.ts';
export { LocalSandbox } from './local-sandbox.ts';

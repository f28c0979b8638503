/** What the agent runner needs from the model gateway: a per-sandbox grant whose token is the sandbox's only credential. */
export interface GatewayGrants {
  /** Creates a live token and a unix socket for one sandbox. */
  open(grant: {
    sandboxId: string;
    userId: string;
    conversationId: string;
    /** Usage is attributed to this agent. */
    agentId?: string | null;
    /** Domains the sandbox may reach through the egress proxy; none: no egress. */
    egressDomains?: readonly string[];
  }): Promise<{ token: string; socketPath: string }>;
  /** Attributes the usage of later requests with this token to a turn. */
  setTurn(token: string, turnId: string | null): void;
  /** Resolves once the turn's model requests have ended and their usage is recorded (true), or after `timeoutMs` (false). */
  usageSettled(turnId: string, timeoutMs: number): Promise<boolean>;
  /** Replaces the sandbox's egress domains for connections opened from now on. */
  setEgressDomains(token: string, domains: readonly string[]): void;
  /** The token stops working at once and its socket is removed. */
  close(token: string): Promise<void>;
}

/**
 * The proxy variables that send a sandbox's HTTP(S) traffic (curl, git, npm, pip, the CLI's web tools) through the
 * gateway's egress proxy, which answers CONNECT (and plain-HTTP proxy requests) on the same address as the model
 * API. Loopback stays direct, so the CLI's own model requests do not go through the proxy.
 */
export function egressProxyEnv(gatewayUrl: string): Record<string, string> {
  const noProxy = 'localhost,127.0.0.1,::1';
  return {
    HTTPS_PROXY: gatewayUrl,
    https_proxy: gatewayUrl,
    HTTP_PROXY: gatewayUrl,
    http_proxy: gatewayUrl,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
  };
}

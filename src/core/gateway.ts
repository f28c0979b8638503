/** What the agent runner needs from the model gateway: a per-sandbox grant whose token is the sandbox's only credential. */
export interface GatewayGrants {
  /** Creates a live token and a unix socket for one sandbox. */
  open(grant: { sandboxId: string; userId: string; conversationId: string }): Promise<{ token: string; socketPath: string }>;
  /** Attributes the usage of later requests with this token to a turn. */
  setTurn(token: string, turnId: string | null): void;
  /** The token stops working at once and its socket is removed. */
  close(token: string): Promise<void>;
}

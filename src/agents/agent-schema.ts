import { z } from 'zod';

const toolName = z.string().min(1).max(200).regex(/^[^\s,]+(\(.*\))?$/s, 'a tool name or rule, e.g. Bash or Bash(npm test:*)');

export const agentLimitsSchema = z.object({
  memoryMb: z.number().int().min(128).max(65536),
  cpus: z.number().min(0.1).max(64),
  turnTimeoutSeconds: z.number().int().min(5).max(24 * 3600),
});

/**
 * An egress domain: `host`, `*.host` (its subdomains, not itself) or either with `:port`. Lowercased; IP literals and
 * single-label names are refused (the last label must hold a letter).
 */
const egressDomain = z
  .string()
  .trim()
  .toLowerCase()
  .max(260)
  .regex(
    /^(\*\.)?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]*[a-z][a-z0-9-]*(:(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3}))?$/,
    'a domain such as packages.example.com, *.git.example.com or example.com:8443 (no IP addresses)',
  );

/** Domains the sandbox may reach through the gateway's egress proxy; none: no network at all. */
export const egressDomainsSchema = z.array(egressDomain).max(100);

const fields = {
  name: z.string().trim().min(1).max(100),
  description: z.string().max(2000),
  /** Appended to Claude Code's system prompt. */
  instructions: z.string().max(100_000),
  model: z.string().trim().min(1).max(200).regex(/^[A-Za-z0-9._\-[\]:]+$/, 'a model id such as claude-sonnet-5'),
  allowedTools: z.array(toolName).max(100),
  disallowedTools: z.array(toolName).max(100),
  maxTurns: z.number().int().min(1).max(1000).nullable(),
  limits: agentLimitsSchema,
  egressDomains: egressDomainsSchema,
  /** The Docker runtime of the agent's sandboxes; `default`: the installation's (AGENTYARD_DOCKER_RUNTIME). */
  sandboxRuntime: z
    .enum(['default', 'runc', 'runsc'])
    .describe('the Docker runtime of the agent’s sandboxes: runc, gVisor’s runsc, or default (the installation’s); GET /api/status lists the choices'),
};

/** What a user may set on an agent; the API validates bodies with it and the OpenAPI spec shows it. */
export const agentDefinitionSchema = z.object({
  ...fields,
  description: fields.description.default(''),
  instructions: fields.instructions.default(''),
  allowedTools: fields.allowedTools.default([]),
  disallowedTools: fields.disallowedTools.default([]),
  maxTurns: fields.maxTurns.default(null),
  egressDomains: fields.egressDomains.default([]),
  sandboxRuntime: fields.sandboxRuntime.default('default'),
});

/** A partial update: only the fields present change (no defaults here, or omitted fields would be reset). */
export const agentPatchSchema = z.object({ ...fields, limits: agentLimitsSchema.partial() }).partial();

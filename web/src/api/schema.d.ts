/**
 * The API's shapes, generated from the server's OpenAPI spec by `npm run api-types` (scripts/api-types.ts).
 * Do not edit: change the routes' zod schemas and run it again.
 */

export interface paths {
    "/healthz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Liveness */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @enum {string} */
                            status: "ok";
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/readyz": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Readiness: the store, the sandbox backend and the CLI binary */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            ready: boolean;
                            checks: {
                                name: string;
                                ok: boolean;
                                detail: string;
                                fix?: string;
                            }[];
                        };
                    };
                };
                /** @description Default Response */
                503: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            ready: boolean;
                            checks: {
                                name: string;
                                ok: boolean;
                                detail: string;
                                fix?: string;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/register": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Create an account (the first one becomes admin) and sign in
         * @description Follows AGENTYARD_REGISTRATION: open, invite (needs inviteCode) or closed.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** Format: email */
                        email: string;
                        password: string;
                        inviteCode?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            user: components["schemas"]["User"];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/login": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Sign in; sets the session cookie
         * @description Failed tries are throttled per account and address (a few free, then a doubling wait) and per account from all addresses: 429 LOGIN_THROTTLED with Retry-After.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        email: string;
                        password: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            user: components["schemas"]["User"];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/logout": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Sign out */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/password": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Change your password
         * @description Needs the current password (a wrong one: 403; tries are throttled like sign-ins). Signs out every browser session of the account, ending their event streams and terminals; a caller signed in with the cookie gets a new one. API tokens stay valid.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        currentPassword: string;
                        newPassword: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/auth/me": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The signed-in user */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            user: components["schemas"]["User"];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/tokens": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Your API tokens (without their secrets) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            tokens: components["schemas"]["ApiToken"][];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        /** Create an API token; the token is shown only in this answer */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        name: string;
                        expiresInDays?: number;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            id: string;
                            name: string;
                            prefix: string;
                            createdAt: string;
                            lastUsedAt: string | null;
                            expiresAt: string | null;
                            revokedAt: string | null;
                            token: string;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/tokens/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        /** Revoke an API token */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/agents": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Your agents and the built-in ones */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agents: components["schemas"]["Agent"][];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        /** Create an agent */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        name: string;
                        /** @default  */
                        description?: string;
                        /** @default  */
                        instructions?: string;
                        model: string;
                        /** @default [] */
                        allowedTools?: string[];
                        /** @default [] */
                        disallowedTools?: string[];
                        /** @default null */
                        maxTurns?: number | null;
                        limits: {
                            memoryMb: number;
                            cpus: number;
                            turnTimeoutSeconds: number;
                        };
                        /** @default [] */
                        egressDomains?: string[];
                        /**
                         * @description the Docker runtime of the agent’s sandboxes: runc, gVisor’s runsc, or default (the installation’s); GET /api/status lists the choices
                         * @default default
                         * @enum {string}
                         */
                        sandboxRuntime?: "default" | "runc" | "runsc";
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Agent"];
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/agent-limits": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The highest limits an agent may have here (set by administrators) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            ceilings: {
                                memoryMb: number;
                                cpus: number;
                                turnTimeoutSeconds: number;
                            };
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/agents/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Read an agent */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Agent"];
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        /** Delete your agent */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        options?: never;
        head?: never;
        /** Update your agent */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        name?: string;
                        description?: string;
                        instructions?: string;
                        model?: string;
                        allowedTools?: string[];
                        disallowedTools?: string[];
                        maxTurns?: number | null;
                        limits?: {
                            memoryMb?: number;
                            cpus?: number;
                            turnTimeoutSeconds?: number;
                        };
                        egressDomains?: string[];
                        /**
                         * @description the Docker runtime of the agent’s sandboxes: runc, gVisor’s runsc, or default (the installation’s); GET /api/status lists the choices
                         * @enum {string}
                         */
                        sandboxRuntime?: "default" | "runc" | "runsc";
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Agent"];
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        trace?: never;
    };
    "/api/conversations": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Your conversations, most recent first; `running` is true while a turn runs or waits */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            conversations: {
                                id: string;
                                agentId: string;
                                title: string;
                                lastSeq: number;
                                createdAt: string;
                                updatedAt: string;
                                running: boolean;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        /** Create a conversation with an agent (the built-in default when none is named) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        agentId?: string;
                        title?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Conversation"];
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A conversation with its turns and messages */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            id: string;
                            agentId: string;
                            title: string;
                            lastSeq: number;
                            createdAt: string;
                            updatedAt: string;
                            running: boolean;
                            turns: components["schemas"]["Turn"][];
                            messages: components["schemas"]["Message"][];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        /** Delete a conversation, its events and its workspace */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        options?: never;
        head?: never;
        /** Rename a conversation */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        title: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Conversation"];
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        trace?: never;
    };
    "/api/conversations/{id}/messages": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Send a message; answers at once with the turn, which runs after any earlier turn */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        text: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                202: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            turnId: string;
                            /** @enum {string} */
                            status: "queued";
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}/interrupt": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Stop the running turn; the conversation goes on afterwards
         * @description Any server replica takes it: one that does not run the conversation forwards it, with your credential, to the one that does.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            interrupted: boolean;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}/events": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The conversation’s events as Server-Sent Events
         * @description Replays the events after Last-Event-ID (or ?after=N; all when absent), then streams live ones. Each SSE `id` is the event’s sequence number and `event` its type: turn.queued, turn.started, message.delta, message.completed, tool.started, tool.ended, turn.ended, error. `data` is the event as JSON with `seq` and `createdAt`. A client that reads nothing for AGENTYARD_EVENT_STREAM_STALL_SECONDS while its connection is full is disconnected and resumes with Last-Event-ID. Streams open at once are bounded per user and per conversation (429 TOO_MANY_STREAMS).
         */
        get: {
            parameters: {
                query?: {
                    after?: string;
                };
                header?: {
                    "last-event-id"?: string;
                };
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The events, each as one SSE message whose `data` is one of these (JSON) */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "text/event-stream": components["schemas"]["ConversationEvent"] | components["schemas"]["StreamClosed"];
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}/files": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * List a directory of the conversation’s workspace, a page at a time
         * @description `path` is relative to the workspace root (the root when absent); it can never leave the workspace. Entries come directories first, then by name, at most `limit` (default 500, at most 2000) per page; pass a page’s `nextCursor` as `cursor` for the next one (null: the last page). A cursor names the last entry, so files added or removed meanwhile never make a page skip or repeat another.
         */
        get: {
            parameters: {
                query?: {
                    path?: string;
                    limit?: number;
                    cursor?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            path: string;
                            entries: {
                                name: string;
                                /** @enum {string} */
                                type: "file" | "directory" | "symlink" | "other";
                                size: number;
                                modifiedAt: string;
                            }[];
                            nextCursor: string | null;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}/files/content": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * A file’s bytes
         * @description With `download=1` the answer is an attachment named after the file. A file over 16777216 bytes, or one that grows past that while it is read, is refused with 413. The `ETag` names this content: send it back as `If-Match` when writing the file, so that a change made meanwhile (by the agent) is not overwritten.
         */
        get: {
            parameters: {
                query: {
                    path: string;
                    download?: "1" | "true";
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description the file (application/octet-stream) */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": unknown;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        /**
         * Upload a file into the workspace
         * @description The body is the file's bytes (`content-type: application/octet-stream`, at most 16777216 bytes). `path` is relative to the workspace root; missing directories are created and an existing file is replaced. Paths that leave the workspace (`..`, absolute paths, symlinks pointing outside) are refused. With `If-Match: "<ETag of a GET>"` the file is written only if it is still that content; otherwise 412 `FILE_CHANGED` and nothing is written (also when the file is gone; `If-Match: *` only asks that it exist). The answer’s `ETag` names the content written.
         */
        put: {
            parameters: {
                query: {
                    path: string;
                };
                header?: {
                    "if-match"?: string;
                };
                path: {
                    id: string;
                };
                cookie?: never;
            };
            /** @description the file’s bytes */
            requestBody: {
                content: {
                    "application/octet-stream": unknown;
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            path: string;
                            size: number;
                        };
                    };
                };
                /** @description FILE_CHANGED: the file is no longer the version If-Match names */
                412: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": components["schemas"]["Error"];
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}/files/archive": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Download a directory of the workspace (the whole workspace by default) as a zip
         * @description Symlinks are not followed, files over 16777216 bytes are left out, and so are the contents of directories deeper than 64 levels; all are listed in `AGENTYARD-SKIPPED.txt` inside the archive, and those known before the first byte is sent are counted in the `x-agentyard-skipped` header. A directory holding more than 536870912 bytes or 20000 entries is refused with 413. Reading stops when the client goes away.
         */
        get: {
            parameters: {
                query?: {
                    path?: string;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description the archive (application/zip) */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": unknown;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversation": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /**
         * Prototype-compatible: run one turn and answer with the reply
         * @description Creates a conversation with the default agent when conversationId is absent. Waits for the turn to end.
         */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        conversationId?: string;
                        message: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            conversationId: string;
                            turnId: string;
                            reply: string;
                            status: string;
                            usage: components["schemas"]["TokenUsage"] | null;
                            costUsd: number | null;
                            durationMs: number;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/users": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** All users */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            users: components["schemas"]["User"][];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/users/{id}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        /** Change a user’s role or disable them */
        patch: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** @enum {string} */
                        role?: "admin" | "user";
                        disabled?: boolean;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            user: components["schemas"]["User"];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        trace?: never;
    };
    "/api/admin/invites": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        put?: never;
        /** Create an invite code for one registration (AGENTYARD_REGISTRATION=invite) */
        post: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** Format: email */
                        email?: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                201: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            code: string;
                            expiresAt: string;
                            email: string | null;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/activity": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Conversations with a live agent right now, with their owner and title */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            conversations: {
                                conversationId: string;
                                busy: boolean;
                                live: boolean;
                                paused: boolean;
                                title: string | null;
                                agentId: string | null;
                                userId: string | null;
                                userEmail: string | null;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/replicas": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The server replicas sharing this database: version, heartbeat, and how many conversations each holds */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            replicas: {
                                id: string;
                                version: string;
                                url: string | null;
                                hostname: string;
                                pid: number;
                                startedAt: string;
                                heartbeatAt: string;
                                /** @description shutting down: it takes no new turns */
                                draining: boolean;
                                /** @description its heartbeat is more recent than the lease time (AGENTYARD_LEASE_SECONDS) */
                                live: boolean;
                                /** @description conversations it holds now */
                                leases: number;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/agent-limits": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The ceilings of agents’ memory, CPUs and turn time */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @description the highest limits an agent may have; agents over them are refused, older ones run clamped */
                            ceilings: {
                                memoryMb: number;
                                cpus: number;
                                turnTimeoutSeconds: number;
                            };
                            /** @description the configured ceilings (AGENTYARD_AGENT_MAX_MEMORY_MB, …_CPUS, …_TURN_SECONDS) */
                            defaults: {
                                memoryMb: number;
                                cpus: number;
                                turnTimeoutSeconds: number;
                            };
                            /** @enum {string} */
                            source: "configuration" | "administrator";
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        /** Set the ceilings of agents’ limits (kept across restarts; they win over the configured ones) */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        memoryMb: number;
                        cpus: number;
                        turnTimeoutSeconds: number;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @description the highest limits an agent may have; agents over them are refused, older ones run clamped */
                            ceilings: {
                                memoryMb: number;
                                cpus: number;
                                turnTimeoutSeconds: number;
                            };
                            /** @description the configured ceilings (AGENTYARD_AGENT_MAX_MEMORY_MB, …_CPUS, …_TURN_SECONDS) */
                            defaults: {
                                memoryMb: number;
                                cpus: number;
                                turnTimeoutSeconds: number;
                            };
                            /** @enum {string} */
                            source: "configuration" | "administrator";
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        post?: never;
        /** Go back to the configured ceilings of agents’ limits */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @description the highest limits an agent may have; agents over them are refused, older ones run clamped */
                            ceilings: {
                                memoryMb: number;
                                cpus: number;
                                turnTimeoutSeconds: number;
                            };
                            /** @description the configured ceilings (AGENTYARD_AGENT_MAX_MEMORY_MB, …_CPUS, …_TURN_SECONDS) */
                            defaults: {
                                memoryMb: number;
                                cpus: number;
                                turnTimeoutSeconds: number;
                            };
                            /** @enum {string} */
                            source: "configuration" | "administrator";
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * Your model usage: totals, and rows by day and agent with tokens by kind and estimated cost
         * @description An administrator may pass ?userId= to see another user. ?format=csv answers the rows as CSV.
         */
        get: {
            parameters: {
                query?: {
                    /** @description first day (UTC, inclusive); default: the first of this month */
                    from?: string;
                    /** @description last day (UTC, inclusive); default: today */
                    to?: string;
                    format?: "json" | "csv";
                    userId?: string;
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The report; with ?format=csv its rows as CSV */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            from: string;
                            to: string;
                            userId: string | null;
                            totals: {
                                requests: number;
                                inputTokens: number;
                                outputTokens: number;
                                /** @description cache write tokens */
                                cacheCreationInputTokens: number;
                                cacheReadInputTokens: number;
                                totalTokens: number;
                                /** @description estimated from the configured price table */
                                costUsd: number;
                            };
                            rows: {
                                day: string;
                                userId?: string;
                                agentId: string | null;
                                agentName: string | null;
                                requests: number;
                                inputTokens: number;
                                outputTokens: number;
                                /** @description cache write tokens */
                                cacheCreationInputTokens: number;
                                cacheReadInputTokens: number;
                                totalTokens: number;
                                /** @description estimated from the configured price table */
                                costUsd: number;
                            }[];
                            users?: {
                                userId: string;
                                email: string | null;
                                requests: number;
                                inputTokens: number;
                                outputTokens: number;
                                /** @description cache write tokens */
                                cacheCreationInputTokens: number;
                                cacheReadInputTokens: number;
                                totalTokens: number;
                                /** @description estimated from the configured price table */
                                costUsd: number;
                            }[];
                        };
                        "text/csv": string;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/usage": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every user’s model usage: totals per user, and rows by user, day and agent */
        get: {
            parameters: {
                query?: {
                    /** @description first day (UTC, inclusive); default: the first of this month */
                    from?: string;
                    /** @description last day (UTC, inclusive); default: today */
                    to?: string;
                    format?: "json" | "csv";
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description The report; with ?format=csv its rows as CSV */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            from: string;
                            to: string;
                            userId: string | null;
                            totals: {
                                requests: number;
                                inputTokens: number;
                                outputTokens: number;
                                /** @description cache write tokens */
                                cacheCreationInputTokens: number;
                                cacheReadInputTokens: number;
                                totalTokens: number;
                                /** @description estimated from the configured price table */
                                costUsd: number;
                            };
                            rows: {
                                day: string;
                                userId?: string;
                                agentId: string | null;
                                agentName: string | null;
                                requests: number;
                                inputTokens: number;
                                outputTokens: number;
                                /** @description cache write tokens */
                                cacheCreationInputTokens: number;
                                cacheReadInputTokens: number;
                                totalTokens: number;
                                /** @description estimated from the configured price table */
                                costUsd: number;
                            }[];
                            users?: {
                                userId: string;
                                email: string | null;
                                requests: number;
                                inputTokens: number;
                                outputTokens: number;
                                /** @description cache write tokens */
                                cacheCreationInputTokens: number;
                                cacheReadInputTokens: number;
                                totalTokens: number;
                                /** @description estimated from the configured price table */
                                costUsd: number;
                            }[];
                        };
                        "text/csv": string;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/quota": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Your quotas: each limit, what you have used of it and when it resets */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            userId: string;
                            /** @description null: unlimited */
                            limits: {
                                /** @description model tokens of every kind per UTC day */
                                tokensPerDay: number | null;
                                /** @description model tokens of every kind per UTC month */
                                tokensPerMonth: number | null;
                                /** @description estimated cost per UTC day, USD */
                                costPerDayUsd: number | null;
                                /** @description estimated cost per UTC month, USD */
                                costPerMonthUsd: number | null;
                                /** @description sandboxes running at once */
                                concurrentSandboxes: number | null;
                                /** @description hours of running sandboxes per UTC month */
                                sandboxHoursPerMonth: number | null;
                            };
                            override: {
                                /** @description model tokens of every kind per UTC day */
                                tokensPerDay?: number | null;
                                /** @description model tokens of every kind per UTC month */
                                tokensPerMonth?: number | null;
                                /** @description estimated cost per UTC day, USD */
                                costPerDayUsd?: number | null;
                                /** @description estimated cost per UTC month, USD */
                                costPerMonthUsd?: number | null;
                                /** @description sandboxes running at once */
                                concurrentSandboxes?: number | null;
                                /** @description hours of running sandboxes per UTC month */
                                sandboxHoursPerMonth?: number | null;
                            } | null;
                            quotas: {
                                /** @enum {string} */
                                quota: "tokensPerDay" | "tokensPerMonth" | "costPerDayUsd" | "costPerMonthUsd" | "concurrentSandboxes" | "sandboxHoursPerMonth";
                                limit: number | null;
                                used: number;
                                resetsAt: string | null;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/quotas": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** The default quota and every user’s override */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @description null: unlimited */
                            default: {
                                /** @description model tokens of every kind per UTC day */
                                tokensPerDay: number | null;
                                /** @description model tokens of every kind per UTC month */
                                tokensPerMonth: number | null;
                                /** @description estimated cost per UTC day, USD */
                                costPerDayUsd: number | null;
                                /** @description estimated cost per UTC month, USD */
                                costPerMonthUsd: number | null;
                                /** @description sandboxes running at once */
                                concurrentSandboxes: number | null;
                                /** @description hours of running sandboxes per UTC month */
                                sandboxHoursPerMonth: number | null;
                            };
                            overrides: {
                                userId: string;
                                limits: {
                                    /** @description model tokens of every kind per UTC day */
                                    tokensPerDay?: number | null;
                                    /** @description model tokens of every kind per UTC month */
                                    tokensPerMonth?: number | null;
                                    /** @description estimated cost per UTC day, USD */
                                    costPerDayUsd?: number | null;
                                    /** @description estimated cost per UTC month, USD */
                                    costPerMonthUsd?: number | null;
                                    /** @description sandboxes running at once */
                                    concurrentSandboxes?: number | null;
                                    /** @description hours of running sandboxes per UTC month */
                                    sandboxHoursPerMonth?: number | null;
                                };
                                updatedAt: string;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/quotas/{userId}": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** A user’s effective quotas and use */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    userId: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            userId: string;
                            /** @description null: unlimited */
                            limits: {
                                /** @description model tokens of every kind per UTC day */
                                tokensPerDay: number | null;
                                /** @description model tokens of every kind per UTC month */
                                tokensPerMonth: number | null;
                                /** @description estimated cost per UTC day, USD */
                                costPerDayUsd: number | null;
                                /** @description estimated cost per UTC month, USD */
                                costPerMonthUsd: number | null;
                                /** @description sandboxes running at once */
                                concurrentSandboxes: number | null;
                                /** @description hours of running sandboxes per UTC month */
                                sandboxHoursPerMonth: number | null;
                            };
                            override: {
                                /** @description model tokens of every kind per UTC day */
                                tokensPerDay?: number | null;
                                /** @description model tokens of every kind per UTC month */
                                tokensPerMonth?: number | null;
                                /** @description estimated cost per UTC day, USD */
                                costPerDayUsd?: number | null;
                                /** @description estimated cost per UTC month, USD */
                                costPerMonthUsd?: number | null;
                                /** @description sandboxes running at once */
                                concurrentSandboxes?: number | null;
                                /** @description hours of running sandboxes per UTC month */
                                sandboxHoursPerMonth?: number | null;
                            } | null;
                            quotas: {
                                /** @enum {string} */
                                quota: "tokensPerDay" | "tokensPerMonth" | "costPerDayUsd" | "costPerMonthUsd" | "concurrentSandboxes" | "sandboxHoursPerMonth";
                                limit: number | null;
                                used: number;
                                resetsAt: string | null;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        /**
         * Set a user’s quota override; it applies to their next turn and model request
         * @description Each limit given replaces the default (null: unlimited); limits left out follow the default. The body replaces any earlier override.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    userId: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** @description model tokens of every kind per UTC day */
                        tokensPerDay?: number | null;
                        /** @description model tokens of every kind per UTC month */
                        tokensPerMonth?: number | null;
                        /** @description estimated cost per UTC day, USD */
                        costPerDayUsd?: number | null;
                        /** @description estimated cost per UTC month, USD */
                        costPerMonthUsd?: number | null;
                        /** @description sandboxes running at once */
                        concurrentSandboxes?: number | null;
                        /** @description hours of running sandboxes per UTC month */
                        sandboxHoursPerMonth?: number | null;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            userId: string;
                            /** @description null: unlimited */
                            limits: {
                                /** @description model tokens of every kind per UTC day */
                                tokensPerDay: number | null;
                                /** @description model tokens of every kind per UTC month */
                                tokensPerMonth: number | null;
                                /** @description estimated cost per UTC day, USD */
                                costPerDayUsd: number | null;
                                /** @description estimated cost per UTC month, USD */
                                costPerMonthUsd: number | null;
                                /** @description sandboxes running at once */
                                concurrentSandboxes: number | null;
                                /** @description hours of running sandboxes per UTC month */
                                sandboxHoursPerMonth: number | null;
                            };
                            override: {
                                /** @description model tokens of every kind per UTC day */
                                tokensPerDay?: number | null;
                                /** @description model tokens of every kind per UTC month */
                                tokensPerMonth?: number | null;
                                /** @description estimated cost per UTC day, USD */
                                costPerDayUsd?: number | null;
                                /** @description estimated cost per UTC month, USD */
                                costPerMonthUsd?: number | null;
                                /** @description sandboxes running at once */
                                concurrentSandboxes?: number | null;
                                /** @description hours of running sandboxes per UTC month */
                                sandboxHoursPerMonth?: number | null;
                            } | null;
                            quotas: {
                                /** @enum {string} */
                                quota: "tokensPerDay" | "tokensPerMonth" | "costPerDayUsd" | "costPerMonthUsd" | "concurrentSandboxes" | "sandboxHoursPerMonth";
                                limit: number | null;
                                used: number;
                                resetsAt: string | null;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        post?: never;
        /** Remove a user’s override: the default applies again */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    userId: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/credentials": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Whether you have your own model credential (never its value) */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            model: {
                                /** @enum {string} */
                                kind: "api-key" | "oauth-token";
                                createdAt: string;
                                updatedAt: string;
                            } | null;
                            canStore: boolean;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/credentials/model": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /**
         * Store or rotate your own Anthropic API key or Claude OAuth token
         * @description Kept encrypted (AES-256-GCM) and used for your turns instead of the platform’s credential, from the next model request on. It is never returned, logged or given to a sandbox.
         */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        /** @enum {string} */
                        kind: "api-key" | "oauth-token";
                        value: string;
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            /** @enum {string} */
                            kind: "api-key" | "oauth-token";
                            createdAt: string;
                            updatedAt: string;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        post?: never;
        /** Forget your own credential: the platform’s is used again */
        delete: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                204: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/egress": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Which agents may reach which domains (every agent with ?all=true) */
        get: {
            parameters: {
                query?: {
                    all?: "true" | "false";
                };
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agents: {
                                agentId: string;
                                name: string;
                                ownerId: string | null;
                                ownerEmail: string | null;
                                egressDomains: string[];
                                updatedAt: string;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/admin/agents/{id}/egress": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        get?: never;
        /** Set any agent’s egress domains (an empty list: no egress); applies from its next turn */
        put: {
            parameters: {
                query?: never;
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody: {
                content: {
                    "application/json": {
                        egressDomains: string[];
                    };
                };
            };
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            agentId: string;
                            name: string;
                            ownerId: string | null;
                            ownerEmail: string | null;
                            egressDomains: string[];
                            updatedAt: string;
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}/egress": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /** Every network connection the conversation’s sandboxes tried through the egress proxy, allowed or denied */
        get: {
            parameters: {
                query?: {
                    limit?: number;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            connections: {
                                id: string;
                                sandboxId: string;
                                host: string;
                                port: number;
                                address: string | null;
                                /** @enum {string} */
                                decision: "allowed" | "denied" | "failed";
                                /** @description ip-literal, not-allowed, private-address, sni-mismatch, connection-limit, unreachable, … */
                                reason: string | null;
                                createdAt: string;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/status": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * This installation’s settings that clients adapt to
         * @description `registration` is open, invite or closed. `modelCredential.configured` (signed-in callers only) says whether the platform holds a model credential (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN); the credential itself is never returned. `hasAccounts` says only whether any account exists yet, so that the sign-in page of a new server opens on creating the first one.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            version: string;
                            /** @enum {string} */
                            registration: "open" | "invite" | "closed";
                            hasAccounts: boolean;
                            modelCredential: {
                                configured: boolean;
                                /** @enum {string|null} */
                                kind: "api-key" | "oauth-token" | null;
                            } | null;
                            limits: {
                                maxMessageBytes: number;
                                maxUploadBytes: number;
                            };
                            sandbox: {
                                /** @enum {string} */
                                backend: "local" | "docker";
                                /** @description what an agent’s sandboxRuntime may name besides default */
                                runtimes: ("runc" | "runsc")[];
                                /** @enum {string|null} */
                                defaultRuntime: "runc" | "runsc" | null;
                            };
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/models": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * The models to choose from for an agent, with their prices
         * @description The default model (AGENTYARD_DEFAULT_MODEL) first, then the model ids of the price table (AGENTYARD_MODEL_PRICES or the built-in one). An agent may still name any other model id.
         */
        get: {
            parameters: {
                query?: never;
                header?: never;
                path?: never;
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Default Response */
                200: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": {
                            defaultModel: string;
                            models: {
                                id: string;
                                /** @description USD per million tokens */
                                price: {
                                    input: number;
                                    output: number;
                                    cacheWrite: number;
                                    cacheRead: number;
                                } | null;
                            }[];
                        };
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
    "/api/conversations/{id}/terminal": {
        parameters: {
            query?: never;
            header?: never;
            path?: never;
            cookie?: never;
        };
        /**
         * An interactive shell in the conversation’s sandbox (WebSocket)
         * @description A WebSocket (connect with `Upgrade: websocket`) to an interactive shell in the conversation's sandbox, the same one the agent uses.
         *
         *     Authenticated by the session cookie or an `Authorization: Bearer` token; a request that carries an `Origin` must come from this server's own origin, and a cookie-authenticated one must carry it.
         *
         *     - Client to server: binary frames are keyboard input; text frames are JSON: `{"type":"resize","cols":N,"rows":N}` or `{"type":"input","data":"..."}`.
         *     - Server to client: binary frames are terminal output; text frames are JSON: `{"type":"attached","session","start","resumed"}` first (`start` is the output offset of the next binary byte; when it differs from the client's `offset` the client clears its screen), `{"type":"exit","code","signal"}` when the shell ends (then the socket closes with 1000), `{"type":"error","code","message"}`.
         *     - A dropped socket leaves the shell running for a few minutes; reconnecting with the same `session` and `offset` resumes it. Close code 4001: the same session was opened in another tab.
         *     - Close code 4401: the credential that opened the shell was revoked (signed out, token revoked, password changed, account disabled); the shell is killed.
         *     - Terminals open at once are bounded per user and per conversation (429 TOO_MANY_TERMINALS); a terminal counts until its shell exits.
         *     - Any server replica takes the socket: one that does not run the conversation's sandbox relays it, frames and close codes unchanged, to the replica that does.
         */
        get: {
            parameters: {
                query?: {
                    /** @description the tab’s terminal id; reconnecting with the same id reattaches to the same shell */
                    session?: string;
                    /** @description bytes of output this tab already shows, so a reconnect sends only what it missed */
                    offset?: number;
                    cols?: number;
                    rows?: number;
                };
                header?: never;
                path: {
                    id: string;
                };
                cookie?: never;
            };
            requestBody?: never;
            responses: {
                /** @description Switching Protocols: the socket is open */
                101: {
                    headers: {
                        [name: string]: unknown;
                    };
                    content: {
                        "application/json": null;
                    };
                };
                "4XX": components["responses"]["Error"];
                "5XX": components["responses"]["Error"];
            };
        };
        put?: never;
        post?: never;
        delete?: never;
        options?: never;
        head?: never;
        patch?: never;
        trace?: never;
    };
}
export type webhooks = Record<string, never>;
export interface components {
    schemas: {
        /** @enum {string} */
        TurnStatus: "queued" | "running" | "completed" | "failed" | "interrupted" | "timed_out";
        /** @description Model tokens, by kind. */
        TokenUsage: {
            inputTokens: number;
            outputTokens: number;
            cacheCreationInputTokens: number;
            cacheReadInputTokens: number;
        };
        /** @description A message was accepted; its turn waits behind any earlier one. */
        TurnQueuedEvent: {
            /** @enum {string} */
            type: "turn.queued";
            /** @description the turn the event belongs to */
            turnId: string;
            /** @description the message that starts the turn */
            text: string;
        };
        /** @description The turn began: the agent works on the message. */
        TurnStartedEvent: {
            /** @enum {string} */
            type: "turn.started";
            /** @description the turn the event belongs to */
            turnId: string;
            text: string;
        };
        /** @description A piece of the assistant message being written. */
        MessageDeltaEvent: {
            /** @enum {string} */
            type: "message.delta";
            /** @description the turn the event belongs to */
            turnId: string;
            messageId: string;
            /** @description text to append to the message */
            text: string;
        };
        /** @description An assistant message is complete. */
        MessageCompletedEvent: {
            /** @enum {string} */
            type: "message.completed";
            /** @description the turn the event belongs to */
            turnId: string;
            messageId: string;
            /** @description the whole message */
            text: string;
        };
        /** @description The agent called a tool. */
        ToolStartedEvent: {
            /** @enum {string} */
            type: "tool.started";
            /** @description the turn the event belongs to */
            turnId: string;
            toolUseId: string;
            name: string;
            /** @description the tool’s input, as the model gave it */
            input: unknown;
        };
        /** @description A tool call returned. */
        ToolEndedEvent: {
            /** @enum {string} */
            type: "tool.ended";
            /** @description the turn the event belongs to */
            turnId: string;
            toolUseId: string;
            output: string;
            isError: boolean;
        };
        /** @description The turn is over: how it ended and what it used. */
        TurnEndedEvent: {
            /** @enum {string} */
            type: "turn.ended";
            /** @description the turn the event belongs to */
            turnId: string;
            /** @enum {string} */
            status: "completed" | "failed" | "interrupted" | "timed_out";
            /** @description model tokens the turn used; null when unknown */
            usage: components["schemas"]["TokenUsage"] | null;
            /** @description estimated cost from the price table; null when unknown */
            costUsd: number | null;
            durationMs: number;
            /** @description why the turn failed, when it did */
            error?: {
                /** @description an error code of the API (src/core/errors.ts) */
                code: string;
                message: string;
            };
        };
        /** @description Something went wrong; within a turn (turnId set) the turn may go on, e.g. SANDBOX_OUT_OF_MEMORY, WORKSPACE_FULL. */
        ErrorEvent: {
            /** @enum {string} */
            type: "error";
            /** @description the turn the event belongs to */
            turnId: string | null;
            /** @description an error code of the API (src/core/errors.ts) */
            code: string;
            message: string;
        };
        /** @description One event’s payload; `type` tells which. */
        EventData: components["schemas"]["TurnQueuedEvent"] | components["schemas"]["TurnStartedEvent"] | components["schemas"]["MessageDeltaEvent"] | components["schemas"]["MessageCompletedEvent"] | components["schemas"]["ToolStartedEvent"] | components["schemas"]["ToolEndedEvent"] | components["schemas"]["TurnEndedEvent"] | components["schemas"]["ErrorEvent"];
        /** @description Every error answer of the API. */
        Error: {
            error: {
                /** @description one of the codes in src/core/errors.ts */
                code: string;
                message: string;
                requestId?: string;
                details?: {
                    [key: string]: unknown;
                };
            };
        };
        User: {
            id: string;
            email: string;
            /** @enum {string} */
            role: "admin" | "user";
            disabled: boolean;
            createdAt: string;
        };
        ApiToken: {
            id: string;
            name: string;
            prefix: string;
            createdAt: string;
            lastUsedAt: string | null;
            expiresAt: string | null;
            revokedAt: string | null;
        };
        Agent: {
            name: string;
            /** @default  */
            description: string;
            /** @default  */
            instructions: string;
            model: string;
            /** @default [] */
            allowedTools: string[];
            /** @default [] */
            disallowedTools: string[];
            /** @default null */
            maxTurns: number | null;
            limits: {
                memoryMb: number;
                cpus: number;
                turnTimeoutSeconds: number;
            };
            /** @default [] */
            egressDomains: string[];
            /**
             * @description the Docker runtime of the agent’s sandboxes: runc, gVisor’s runsc, or default (the installation’s); GET /api/status lists the choices
             * @default default
             * @enum {string}
             */
            sandboxRuntime: "default" | "runc" | "runsc";
            id: string;
            ownerId: string | null;
            builtin: boolean;
            createdAt: string;
            updatedAt: string;
        };
        Conversation: {
            id: string;
            agentId: string;
            title: string;
            lastSeq: number;
            createdAt: string;
            updatedAt: string;
        };
        Turn: {
            id: string;
            status: components["schemas"]["TurnStatus"];
            input: string;
            createdAt: string;
            startedAt: string | null;
            endedAt: string | null;
            usage: components["schemas"]["TokenUsage"] | null;
            costUsd: number | null;
            error: string | null;
        };
        Message: {
            /** @enum {string} */
            role: "user" | "assistant";
            turnId: string;
            text: string;
            createdAt: string;
        };
        /** @description One event of a conversation, as the `data` of the SSE message named by its `type`. */
        ConversationEvent: {
            /** @description numbers the conversation’s events from 1 without gaps; the SSE `id` */
            seq: number;
            createdAt: string;
        } & components["schemas"]["EventData"];
        /** @description The `data` of a last `error` message without `id`: the server ended the stream (e.g. UNAUTHORIZED when its credential was revoked). */
        StreamClosed: {
            code: string;
            message: string;
        };
    };
    responses: {
        /** @description An error; its code tells which (the codes and their statuses are in src/core/errors.ts) */
        Error: {
            headers: {
                [name: string]: unknown;
            };
            content: {
                "application/json": components["schemas"]["Error"];
            };
        };
    };
    parameters: never;
    requestBodies: never;
    headers: never;
    pathItems: never;
}
export type $defs = Record<string, never>;
export type operations = Record<string, never>;

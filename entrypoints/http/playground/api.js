// The service's HTTP API as the page uses it: the token and org_id on every call, and every
// refusal turned into an ApiError that says in words what happened. Paths are relative, so
// the page calls the server that served it, behind a path prefix too.

const TITLES = {
  400: "Bad request",
  401: "Not authenticated",
  403: "Forbidden",
  404: "Not found",
  408: "Request timeout",
  409: "Conflict",
  413: "Request too large",
  429: "Too many requests",
  500: "Server error",
  503: "Service unavailable",
};

const HINTS = {
  401: "Check the token above (a token is shown once, when it is made).",
  403: "Is the org_id the token's own organisation, and may its role do this?",
};

export class ApiError extends Error {
  constructor({status, code, message, requestId = null, field = null, retryAfter = null}) {
    super(message);
    this.name = "ApiError";
    Object.assign(this, {status, code, requestId, field, retryAfter});
  }

  // One sentence or three for a person: what happened, the API's own words, when to try
  // again, and the request id to quote (it is in the server's log line).
  describe() {
    const title = this.status === 0
      ? "Cannot reach the service"
      : `${TITLES[this.status] ?? "HTTP error"} (${this.status}, ${this.code})`;
    const said = /[.!?]$/.test(this.message) ? this.message : `${this.message}.`;
    const parts = [`${title}: ${said}`];
    if (this.field && !this.message.includes(this.field)) parts.push(`Field: ${this.field}.`);
    if (this.retryAfter !== null) parts.push(`Retry after ${this.retryAfter} s.`);
    if (HINTS[this.status]) parts.push(HINTS[this.status]);
    if (this.requestId) parts.push(`Request id: ${this.requestId}.`);
    return parts.join(" ");
  }
}

export function describe(error) {
  if (error instanceof ApiError) return error.describe();
  return `Unexpected error in the page: ${error?.message ?? error}`;
}

// The API's JSON error ({"error": {code, message, request_id, field?}}) and Retry-After.
export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's page): the status says what there is to say.
  }
  const error = body && typeof body.error === "object" && body.error !== null ? body.error : {};
  const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
  return new ApiError({
    status: response.status,
    code: error.code ?? "http_error",
    message: error.message ?? (response.statusText || "the server gave no reason"),
    requestId: error.request_id ?? response.headers.get("X-Request-Id"),
    field: error.field ?? null,
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : null,
  });
}

const API = "api/conversation";

export class Api {
  constructor(token, orgId) {
    this.token = token;
    this.orgId = orgId;
  }

  url(path, query = {}) {
    const params = new URLSearchParams({org_id: this.orgId});
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    return `${path}?${params}`;
  }

  // The response when it is a success; an ApiError otherwise (status 0: no answer at all).
  // An abort (AbortController) is rethrown as it is.
  async send(method, path, {query, body, headers = {}, signal} = {}) {
    const init = {method, signal, cache: "no-store",
      headers: {Authorization: `Bearer ${this.token}`, ...headers}};
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(this.url(path, query), init);
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError({status: 0, code: "network_error",
        message: "no answer from the server (is it running? is the network up?)"});
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }

  async json(method, path, options) {
    const response = await this.send(method, path, options);
    return response.status === 204 ? null : response.json();
  }

  models() {
    return this.json("GET", "api/models");
  }

  listConversations({isArchived, limit, offset}, signal) {
    const query = {is_archived: isArchived, limit, offset};
    return this.json("GET", `${API}/list`, {query, signal});
  }

  search({q, isArchived, limit, offset}, signal) {
    const query = {q, is_archived: isArchived, limit, offset};
    return this.json("GET", `${API}/search`, {query, signal});
  }

  createConversation(title) {
    return this.json("POST", `${API}/create`, {body: {title}});
  }

  withSessions(conversationId) {
    return this.json("GET", `${API}/get_with_sessions`, {query: {conversation_id: conversationId}});
  }

  // Every stored message of the conversation, oldest first, a page at a time.
  async messages(conversationId) {
    const all = [];
    for (let offset = 0; ; offset += 100) {
      const query = {conversation_id: conversationId, limit: 100, offset};
      const page = await this.json("GET", `${API}/messages`, {query});
      all.push(...page.messages);
      if (!page.has_more) return all;
    }
  }

  createSession(conversationId, modelId) {
    const body = {conversation_id: conversationId, model_id: modelId};
    return this.json("POST", `${API}/create_session`, {body});
  }

  // POST stream_chat: the SSE response. The Idempotency-Key makes sending it again (after a
  // refresh before `start`) re-attach to the same reply instead of storing a second message.
  streamChat(sessionId, message, key, signal) {
    return this.send("POST", `${API}/stream_chat`, {
      body: {chat_session_id: sessionId, message},
      headers: {"Idempotency-Key": key, Accept: "text/event-stream"},
      signal,
    });
  }

  // GET stream: the reply's events after `lastEventId` (all of them when null); 204 when the
  // reply is over and nothing follows that id.
  attach(sessionId, messageId, lastEventId, signal) {
    const headers = {Accept: "text/event-stream"};
    if (lastEventId !== null && lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
    const query = {chat_session_id: sessionId, message_id: messageId};
    return this.send("GET", `${API}/stream`, {query, headers, signal});
  }

  cancel(sessionId, messageId) {
    const body = {chat_session_id: sessionId};
    if (messageId) body.message_id = messageId;
    return this.json("POST", `${API}/cancel`, {body});
  }

  setArchived(conversationId, isArchived) {
    const body = {conversation_id: conversationId, is_archived: isArchived};
    return this.json("POST", `${API}/update`, {body});
  }
}

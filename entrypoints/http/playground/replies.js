// Following a reply, and remembering it so that a page refresh picks it up where it was.
//
// Each reply the page follows has a record in sessionStorage (this tab's own storage, kept
// across a reload): its session, its message id once `start` came, the id of the last event
// received and the text received up to it. After a reload the page re-attaches with
// GET /api/conversation/stream and Last-Event-ID, so the reply goes on where it was, every
// event once. A reply that had not started yet is sent again with the same Idempotency-Key:
// the server answers that by re-attaching to the same reply, never by storing a second one.

import {ApiError} from "./api.js";
import {readEvents} from "./sse.js";

const STORE = "conversation-service.playground.replies";
const SAVE_EVERY_MS = 200; // the text is written at most this often while it streams
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];

function records() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE) ?? "{}") ?? {};
  } catch {
    return {};
  }
}

function write(all) {
  sessionStorage.setItem(STORE, JSON.stringify(all));
}

export function pendingReply(sessionId) {
  return records()[sessionId] ?? null;
}

function remember(record) {
  write({...records(), [record.chat_session_id]: record});
}

function forget(sessionId) {
  const all = records();
  delete all[sessionId];
  write(all);
}

export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  // randomUUID is for secure contexts only (https, localhost); getRandomValues is everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function newReply(conversationId, sessionId, message) {
  return {
    conversation_id: conversationId,
    chat_session_id: sessionId,
    message,
    idempotency_key: newIdempotencyKey(),
    message_id: null,
    user_message_id: null,
    last_event_id: null,
    text: "",
  };
}

// A reply being written that this tab did not send (another tab, another client): followed
// from its first event.
export function runningReply(conversationId, sessionId, messageId, userMessageId) {
  return {...newReply(conversationId, sessionId, ""), message_id: messageId,
    user_message_id: userMessageId};
}

const following = new Set();
// A reload or a closed tab: keep the latest text and event id, whatever the save timer says.
addEventListener("pagehide", () => {
  for (const follower of following) follower.save();
});

// Follows one reply to its `end`, through dropped connections, and tells `on` about it:
// start(data), content(text), error(data), end(data), over() (nothing follows: the reply
// ended before), retrying(delayMs), failed(error). stop() leaves it (the record is kept,
// so the reply can be followed again); only `end` or a refusal from the API forgets it.
export class ReplyFollower {
  constructor(api, record, on) {
    this.api = api;
    this.record = record;
    this.on = on;
    this.abort = new AbortController();
    this.timer = null;
    this.done = false;
  }

  stop() {
    this.save();
    this.abort.abort();
  }

  save() {
    clearTimeout(this.timer);
    this.timer = null;
    if (!this.done) remember(this.record);
  }

  saveSoon() {
    this.timer ??= setTimeout(() => this.save(), SAVE_EVERY_MS);
  }

  finish() {
    this.done = true;
    clearTimeout(this.timer);
    following.delete(this);
    forget(this.record.chat_session_id);
  }

  async run() {
    following.add(this);
    this.save();
    try {
      await this.follow();
    } catch (error) {
      this.finish();
      this.on.failed(error);
    } finally {
      following.delete(this);
      clearTimeout(this.timer);
    }
  }

  async follow() {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.once();
      if (outcome === "ended") return;
      if (this.abort.signal.aborted) return;
      const delay = typeof outcome === "number" ? outcome : RETRY_DELAYS_MS[attempt];
      if (delay === undefined) {
        this.on.failed(new ApiError({status: 0, code: "stream_lost",
          message: "the stream kept breaking off; reload the page to follow the reply again"}));
        return;
      }
      this.on.retrying(delay);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  // One connection: "ended" when the reply is over (or refused), "lost" when it broke off,
  // or the milliseconds to wait when a re-attach was refused for now (429, 503).
  async once() {
    const record = this.record;
    const signal = this.abort.signal;
    let response;
    try {
      const session = record.chat_session_id;
      response = record.message_id
        ? await this.api.attach(session, record.message_id, record.last_event_id, signal)
        : await this.api.streamChat(session, record.message, record.idempotency_key, signal);
    } catch (error) {
      if (error.name === "AbortError") return "lost";
      if (error instanceof ApiError && error.status === 0) return "lost";
      if (record.message_id && [429, 503].includes(error.status) && error.retryAfter !== null) {
        return error.retryAfter * 1000; // the reply goes on without us: wait, then re-attach
      }
      this.finish();
      this.on.failed(error);
      return "ended";
    }
    if (response.status === 204) {
      this.finish();
      this.on.over();
      return "ended";
    }
    try {
      for await (const event of readEvents(response)) {
        if (this.handle(event)) return "ended";
      }
    } catch (error) {
      if (error.name !== "AbortError" && !(error instanceof TypeError)) throw error;
      // TypeError: the connection broke off mid-body; retried like a stream that ended early.
    }
    return "lost";
  }

  // True at `end`.
  handle({id, event, data}) {
    const record = this.record;
    const body = JSON.parse(data);
    record.last_event_id = id;
    switch (event) {
      case "start":
        record.message_id = body.message_id;
        record.user_message_id = body.user_message_id;
        this.save();
        this.on.start(body);
        return false;
      case "content":
        record.text += body.content;
        this.saveSoon();
        this.on.content(body.content);
        return false;
      case "error":
        this.save();
        this.on.error(body);
        return false;
      case "end":
        this.finish();
        this.on.end(body);
        return true;
      default:
        return false;
    }
  }
}

// One chat session as a column: its stored messages, a box to send a message, the reply
// streaming in, Stop, and how the reply finished (its finish reason and usage).

import {describe} from "./api.js";
import {h, usageText} from "./dom.js";
import {ReplyFollower, newReply, pendingReply, runningReply} from "./replies.js";

function failureText(error) {
  return error ? `${error.code}: ${error.message}` : "";
}

// "stop · 7 prompt + 9 completion = 16 tokens (estimated)", for a stored reply or an `end`.
function outcomeText({status, finishReason, usage, error}) {
  const parts = [];
  if (status && status !== "completed") parts.push(status);
  if (finishReason && finishReason !== status) parts.push(finishReason);
  if (usage) parts.push(usageText(usage));
  if (error) parts.push(failureText(error));
  return parts.join(" · ");
}

export class SessionColumn {
  constructor({api, session, modelName}) {
    this.api = api;
    this.session = session;
    this.follower = null;
    this.bubbles = new Map(); // message id -> {element, text (a Text node), meta}
    this.log = h("div", {class: "log"});
    this.input = h("textarea", {rows: 3, placeholder: `Message ${modelName}`,
      "aria-label": `Message to ${modelName}`, onkeydown: (event) => this.onKey(event)});
    this.sendButton = h("button", {type: "submit"}, "Send");
    this.stopButton = h("button", {type: "button", class: "stop", disabled: true,
      onclick: () => this.stopReply()}, "Stop");
    this.statusLine = h("p", {class: "column-status", role: "status"});
    this.badge = h("span", {class: "badge"});
    const composer = h("form", {class: "composer", onsubmit: (event) => {
      event.preventDefault();
      this.send();
    }}, this.input, h("div", {class: "buttons"}, this.sendButton, this.stopButton));
    const title = `session ${session.id}\nmodel ${session.model_id}\ncontext: ${session.context}`;
    this.element = h("section", {class: "column", "data-session-id": session.id},
      h("header", {class: "column-head"}, h("h3", {title}, modelName), this.badge),
      this.log, composer, this.statusLine);
    this.setBadge(session.status);
    if (session.status === "completed") {
      this.input.disabled = this.sendButton.disabled = true;
      this.status("This session is completed: it takes no more messages.");
    }
  }

  // The session's stored messages, oldest first; then a reply this tab was following before
  // a reload, if there is one, is followed again from where it was.
  show(messages) {
    this.log.replaceChildren();
    this.bubbles.clear();
    for (const message of messages) {
      const bubble = this.addBubble(message.role, message.content, message.id);
      if (message.role === "assistant") {
        bubble.meta.textContent = outcomeText({status: message.status,
          finishReason: message.finish_reason, usage: message.usage, error: message.error});
      }
    }
    const record = pendingReply(this.session.id) ?? this.running(messages);
    if (record && record.conversation_id === this.session.conversation_id) this.follow(record);
    this.scroll(true);
  }

  // A reply still being written that this tab did not send, to follow live as well.
  running(messages) {
    const at = messages.findLastIndex((m) => m.role === "assistant");
    if (at === -1 || messages[at].status !== "in_progress") return null;
    const question = messages.slice(0, at).findLast((m) => m.role === "user");
    const {conversation_id: conversationId, chat_session_id: sessionId, id} = messages[at];
    return runningReply(conversationId, sessionId, id, question?.id ?? null);
  }

  addBubble(role, content, id = null) {
    const text = document.createTextNode(content);
    const meta = h("footer", {class: "meta"});
    const element = h("article", {class: `message ${role}`, "data-message-id": id},
      h("div", {class: "text"}, text), meta);
    const bubble = {element, text, meta};
    if (id) this.bubbles.set(id, bubble);
    this.log.append(element);
    return bubble;
  }

  onKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.send();
    }
  }

  send() {
    const message = this.input.value;
    if (!message.trim() || this.follower || this.sendButton.disabled) return;
    this.input.value = "";
    this.follow(newReply(this.session.conversation_id, this.session.id, message));
  }

  // Follows `record` (a new message, or one remembered across a reload) to its `end`.
  follow(record) {
    const resumed = record.message_id !== null || record.last_event_id !== null;
    let question = this.bubbles.get(record.user_message_id);
    if (!question && record.message) {
      question = this.addBubble("user", record.message, record.user_message_id);
    }
    let reply = this.bubbles.get(record.message_id);
    if (reply) {
      reply.text.data = record.text; // stored text may lag; this is what the events said
      reply.meta.textContent = "";
    } else {
      reply = this.addBubble("assistant", record.text, record.message_id);
    }
    reply.element.classList.add("streaming");
    this.setBusy(true);
    this.status(resumed ? "Re-attaching to the reply…" : "Sending…");
    let failure = null;
    const done = (text, kind) => {
      reply.element.classList.remove("streaming");
      this.setBusy(false);
      this.status(text, kind);
    };
    const follower = new ReplyFollower(this.api, record, {
      start: (data) => {
        // Sent again after a reload (its Idempotency-Key): the reply may be listed already.
        [question, reply] = [question, reply].map((bubble, n) => {
          const id = n === 0 ? data.user_message_id : data.message_id;
          const listed = this.bubbles.get(id);
          if (!bubble) return listed;
          if (!listed || listed === bubble) {
            bubble.element.dataset.messageId = id;
            this.bubbles.set(id, bubble);
            return bubble;
          }
          bubble.element.remove();
          return listed;
        });
        reply.text.data = record.text;
        reply.meta.textContent = "";
        reply.element.classList.add("streaming");
        this.setBadge("responding");
        this.status("Streaming…");
      },
      content: (text) => {
        reply.text.appendData(text);
        this.status("Streaming…");
        this.scroll();
      },
      error: (data) => {
        failure = data;
        this.status(`The reply failed: ${failureText(data)}`, "error");
      },
      end: (data) => {
        const text = outcomeText({finishReason: data.finish_reason, usage: data.usage,
          error: failure});
        reply.meta.textContent = text;
        this.setBadge("active");
        done(`Finished: ${text}`, data.finish_reason === "error" ? "error" : "");
      },
      over: () => done("The reply had already ended; reopen the conversation to see it."),
      retrying: (ms) => this.status(`Connection lost; re-attaching in ${ms / 1000} s…`),
      failed: (error) => {
        if (!record.message_id) {
          // Refused before it started: nothing was stored. Give the text back to retry.
          reply.element.remove();
          question.element.remove();
          if (!this.input.value) this.input.value = record.message;
        }
        done(describe(error), "error");
      },
    });
    this.follower = follower;
    follower.run().finally(() => {
      if (this.follower === follower) this.follower = null;
    });
  }

  async stopReply() {
    const record = this.follower?.record;
    if (!record) return;
    this.stopButton.disabled = true;
    try {
      const answer = await this.api.cancel(this.session.id, record.message_id);
      if (!answer.cancelled) this.status("Nothing to stop: the reply has ended.");
    } catch (error) {
      this.stopButton.disabled = false;
      this.status(`Stop failed. ${describe(error)}`, "error");
    }
  }

  // Leaves the reply (another conversation was opened): it goes on on the server, and is
  // followed again when this conversation is opened in this tab.
  detach() {
    this.follower?.stop();
  }

  setBusy(busy) {
    this.sendButton.disabled = busy;
    this.stopButton.disabled = !busy;
  }

  setBadge(status) {
    this.badge.textContent = status;
    this.badge.className = `badge ${status}`;
  }

  status(text, kind = "") {
    this.statusLine.textContent = text;
    this.statusLine.className = `column-status ${kind}`.trim();
  }

  scroll(always = false) {
    const log = this.log;
    if (always || log.scrollHeight - log.scrollTop - log.clientHeight < 80) {
      log.scrollTop = log.scrollHeight;
    }
  }
}

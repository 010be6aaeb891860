// The sidebar's list of conversations: a page at a time, newest activity first; with text in
// the search box, the search's results instead (best first, with the matching words marked),
// fetched as the user types.

import {describe} from "./api.js";
import {byId, h, relativeTime} from "./dom.js";

const PAGE_SIZE = 20;
const MIN_PREFIX_CHARS = 2; // the search refuses a shorter `word*`
const TYPING_PAUSE_MS = 250; // search once typing pauses this long

export class ConversationList {
  constructor({onOpen}) {
    this.api = null;
    this.onOpen = onOpen;
    this.offset = 0;
    this.selected = null;
    this.request = null; // the AbortController of the page being fetched
    this.typing = null;
    this.list = byId("conversations");
    this.statusLine = byId("list-status");
    this.search = byId("search");
    this.filter = byId("archived-filter");
    this.newer = byId("newer");
    this.older = byId("older");
    this.search.addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => this.firstPage(), TYPING_PAUSE_MS);
    });
    this.filter.addEventListener("change", () => this.firstPage());
    this.newer.addEventListener("click", () => this.turn(-PAGE_SIZE));
    this.older.addEventListener("click", () => this.turn(PAGE_SIZE));
  }

  connect(api) {
    this.api = api;
    this.firstPage();
  }

  clear() {
    this.api = null;
    this.request?.abort();
    this.list.replaceChildren();
    this.status("");
    this.newer.disabled = this.older.disabled = true;
    byId("page-label").textContent = "";
  }

  firstPage() {
    this.offset = 0;
    return this.refresh();
  }

  turn(by) {
    this.offset = Math.max(0, this.offset + by);
    return this.refresh();
  }

  select(id) {
    this.selected = id;
    for (const item of this.list.children) {
      item.classList.toggle("selected", item.dataset.conversationId === id);
    }
  }

  // Fetches the current page; a newer request replaces one still on its way.
  async refresh() {
    if (!this.api) return;
    this.request?.abort();
    const request = (this.request = new AbortController());
    const q = this.search.value.trim();
    const query = {isArchived: this.filter.value, limit: PAGE_SIZE, offset: this.offset};
    this.status(q ? "Searching…" : "Loading…");
    let page;
    try {
      page = q
        ? await this.api.search({...query, q: asTyped(this.search.value)}, request.signal)
        : await this.api.listConversations(query, request.signal);
    } catch (error) {
      if (error.name === "AbortError") return;
      this.list.replaceChildren();
      this.status(describe(error), "error");
      return;
    }
    const found = q
      ? page.results.map((r) => ({conversation: r.conversation, snippet: r.snippet}))
      : page.conversations.map((conversation) => ({conversation, snippet: null}));
    this.render(found);
    const first = page.offset + 1;
    const label = found.length ? `${first}–${page.offset + found.length}` : "";
    byId("page-label").textContent = label;
    this.newer.disabled = page.offset === 0;
    this.older.disabled = !page.has_more;
    if (found.length) this.status(q ? `Matching “${q}”:` : "");
    else this.status(q ? `Nothing matches “${q}”.` : "No conversations yet: create one above.");
  }

  render(found) {
    const items = found.map(({conversation, snippet}) => {
      const when = h("time", {datetime: conversation.updated_at, title: conversation.updated_at},
        relativeTime(conversation.updated_at));
      const button = h("button", {type: "button", class: "conversation-link",
        onclick: () => this.onOpen(conversation.id)},
      h("span", {class: "title"}, conversation.title),
      conversation.is_archived ? h("span", {class: "badge archived"}, "archived") : null,
      when,
      snippet ? snippetElement(snippet) : null);
      const item = h("li", {"data-conversation-id": conversation.id}, button);
      item.classList.toggle("selected", conversation.id === this.selected);
      return item;
    });
    this.list.replaceChildren(...items);
  }

  status(text, kind = "") {
    this.statusLine.textContent = text;
    this.statusLine.className = `list-status ${kind}`.trim();
  }
}

// While typing, the last word is most likely cut short: search for the words it begins
// (`vect` as `vect*`), unless it ends a phrase still open or is too short for a prefix.
function asTyped(q) {
  const quotes = (q.match(/"/g) ?? []).length;
  const last = /[\p{L}\p{N}]+$/u.exec(q);
  if (quotes % 2 === 0 && last && last[0].length >= MIN_PREFIX_CHARS) return `${q}*`;
  return q;
}

// The search's snippet: its parts as text, the matching words in <mark>.
function snippetElement(snippet) {
  const parts = snippet.parts.map((p) => (p.highlight ? h("mark", {}, p.text) : p.text));
  return h("span", {class: "snippet"}, ...parts);
}

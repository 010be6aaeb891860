// The playground: the token and org_id (kept in localStorage), the conversation list, and the
// open conversation (its id in the URL's #fragment, so a reload reopens it) with one column
// per chat session.

import {Api, describe} from "./api.js";
import {ConversationList} from "./conversations.js";
import {byId, h, relativeTime} from "./dom.js";
import {SessionColumn} from "./session_column.js";

const TOKEN = "conversation-service.playground.token";
const ORG = "conversation-service.playground.org";

let api = null;
let models = new Map(); // model id -> name
let open = null; // {conversation, columns}
const list = new ConversationList({onOpen: (id) => { location.hash = `c=${id}`; }});

function notify(text) {
  byId("notice-text").textContent = text;
  byId("notice").hidden = !text;
}

function openedId() {
  const found = /^#c=([0-9a-fA-F-]{36})$/.exec(location.hash);
  return found ? found[1].toLowerCase() : null;
}

async function connect() {
  const token = byId("token").value.trim();
  const org = byId("org").value.trim();
  if (!token || !org) return;
  localStorage.setItem(TOKEN, token);
  localStorage.setItem(ORG, org);
  api = new Api(token, org);
  notify("");
  try {
    // The first call: a token or org_id that is wrong shows here, in words.
    const found = await api.models();
    models = new Map(found.models.map((m) => [m.id, m.name]));
  } catch (error) {
    api = null;
    list.clear();
    closeConversation();
    notify(`Could not connect. ${describe(error)}`);
    return;
  }
  byId("model").replaceChildren(...[...models].map(([id, name]) => h("option", {value: id}, name)));
  list.connect(api);
  await showConversation();
}

function forget() {
  localStorage.removeItem(TOKEN);
  localStorage.removeItem(ORG);
  byId("token").value = byId("org").value = "";
  api = null;
  list.clear();
  closeConversation();
  notify("");
}

function closeConversation() {
  for (const column of open?.columns ?? []) column.detach();
  open = null;
  byId("conversation").hidden = true;
  byId("welcome").hidden = false;
  byId("columns").replaceChildren();
}

// Shows the conversation the URL names (or none).
async function showConversation() {
  const id = openedId();
  if (!api || !id) {
    closeConversation();
    list.select(null);
    return;
  }
  let found;
  let messages;
  try {
    [found, messages] = await Promise.all([api.withSessions(id), api.messages(id)]);
  } catch (error) {
    notify(`Could not open the conversation. ${describe(error)}`);
    return;
  }
  if (openedId() !== id) return; // another one was opened meanwhile
  closeConversation();
  const {sessions, ...conversation} = found;
  open = {conversation, columns: []};
  list.select(id);
  renderHead();
  for (const session of sessions) addColumn(session, messages);
  byId("welcome").hidden = true;
  byId("conversation").hidden = false;
}

function renderHead() {
  const {conversation, columns} = open;
  byId("conversation-title").textContent = conversation.title;
  const sessions = columns.length === 1 ? "1 session" : `${columns.length} sessions`;
  const archived = conversation.is_archived ? " · archived" : "";
  const meta = byId("conversation-meta");
  meta.textContent = `created ${relativeTime(conversation.created_at)} · ${sessions}${archived}`;
  meta.title = `conversation ${conversation.id}`;
  byId("archive").textContent = conversation.is_archived ? "Unarchive" : "Archive";
}

function addColumn(session, messages = []) {
  const modelName = models.get(session.model_id) ?? `model ${session.model_id.slice(0, 8)}`;
  const column = new SessionColumn({api, session, modelName});
  open.columns.push(column);
  byId("columns").append(column.element);
  column.show(messages.filter((m) => m.chat_session_id === session.id));
  renderHead();
  return column;
}

async function createConversation(event) {
  event.preventDefault();
  const input = byId("new-title");
  if (!api || !input.value.trim()) return;
  try {
    const conversation = await api.createConversation(input.value.trim());
    input.value = "";
    await list.firstPage();
    location.hash = `c=${conversation.id}`;
  } catch (error) {
    notify(`Could not create the conversation. ${describe(error)}`);
  }
}

async function createSession(event) {
  event.preventDefault();
  if (!api || !open) return;
  const conversation = open.conversation;
  try {
    const session = await api.createSession(conversation.id, byId("model").value);
    if (open?.conversation.id === conversation.id) addColumn(session).input.focus();
  } catch (error) {
    notify(`Could not add the session. ${describe(error)}`);
  }
}

// POST /api/conversation/update {conversation_id, is_archived}.
async function toggleArchived() {
  if (!api || !open) return;
  const conversation = open.conversation;
  const archive = !conversation.is_archived;
  try {
    const updated = await api.setArchived(conversation.id, archive);
    if (open?.conversation.id === conversation.id) {
      open.conversation = {...conversation, ...(updated ?? {}), is_archived: archive};
      renderHead();
    }
    await list.refresh();
  } catch (error) {
    notify(`Could not ${archive ? "archive" : "unarchive"} the conversation. ${describe(error)}`);
  }
}

byId("credentials").addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});
byId("forget").addEventListener("click", forget);
byId("notice-close").addEventListener("click", () => notify(""));
byId("new-conversation").addEventListener("submit", createConversation);
byId("new-session").addEventListener("submit", createSession);
byId("archive").addEventListener("click", toggleArchived);
addEventListener("hashchange", showConversation);

byId("token").value = localStorage.getItem(TOKEN) ?? "";
byId("org").value = localStorage.getItem(ORG) ?? "";
connect();

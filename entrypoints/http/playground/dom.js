// Small helpers for building the page. Elements are made from text, never from HTML strings:
// whatever the API returns is shown as text, so a title or a reply cannot inject markup.

export function byId(id) {
  return document.getElementById(id);
}

// h("p", {class: "meta", title: "..."}, "text", child, ...): an element with its attributes
// (`on<event>` adds a listener) and children (strings become text nodes).
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// "just now", "5 min ago", "3 h ago", then the date: short, and the same on every run of a
// test (the full timestamp is in the element's title).
export function relativeTime(iso, now = Date.now()) {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "";
  const seconds = Math.max(0, (now - at) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  const date = {year: "numeric", month: "short", day: "numeric"};
  return new Date(at).toLocaleDateString(undefined, date);
}

// "7 prompt + 9 completion = 16 tokens (estimated)"
export function usageText(usage) {
  if (!usage) return "";
  const estimated = usage.estimated ? " (estimated)" : "";
  return `${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion = ` +
    `${usage.total_tokens} tokens${estimated}`;
}

export function shortId(id) {
  return String(id).slice(0, 8);
}

// Server-Sent Events read from a fetch() response body. EventSource can neither POST nor send
// an Authorization header, so the page parses the stream itself, as the WHATWG HTML standard's
// "event stream interpretation" says: lines end in CRLF, LF or CR; `data:` lines join with a
// LF; a blank line dispatches the event; a line starting with ":" is a comment (the server's
// keep-alive); the last event id carries over to events that do not set one.

function lineEnd(buffer) {
  // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
  return /\r\n|\n|\r(?=[^\n])/.exec(buffer);
}

// Yields {id, event, data} (data as text) until the body ends. Cancelling the loop (break,
// or an abort of the fetch) releases the connection.
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let lastId = null;
  let type = "";
  let data = null;
  try {
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return; // an event cut before its blank line is dropped, as the standard says
      buffer += value;
      let end;
      while ((end = lineEnd(buffer)) !== null) {
        const line = buffer.slice(0, end.index);
        buffer = buffer.slice(end.index + end[0].length);
        if (line === "") {
          if (data !== null) yield {id: lastId, event: type || "message", data};
          type = "";
          data = null;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let text = colon === -1 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data = data === null ? text : `${data}\n${text}`;
        else if (field === "event") type = text;
        else if (field === "id" && !text.includes("\0")) lastId = text;
        // `retry` and unknown fields: nothing this page needs.
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

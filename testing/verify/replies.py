"""The state machine's reply rules: a message streamed whole, a stream left and re-attached
(every event exactly once), a reply cancelled, and a second message while one is running
(enqueue, reject, interrupt). Each checks the events, the reply's text (known in advance
for the echo model), and what is stored, in order."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from conversation_service.testing import strategies as cs
from conversation_service.testing.verify.api import (
    Api,
    Disagreement,
    Event,
    Stream,
    expect,
    text_of,
)
from conversation_service.testing.verify.base import BASE, MachineBase, has_active_session
from conversation_service.testing.verify.model import (
    Conv,
    Msg,
    Org,
    Sess,
    rest_of_reply,
    whole_reply,
)

STATUS_OF = {"stop": "completed", "length": "completed", "cancelled": "cancelled"}

messages = cs.words(30) | cs.message_texts(max_size=120)
long_messages = cs.words(40, min_words=8)  # a reply long enough to be caught while it runs


class ReplyRules(MachineBase):
    """Rules of replies, checked as they stream and as they are stored."""

    def pick_active(self, data: st.DataObject) -> tuple[Org, Conv, Sess]:
        return self.pick_session(data, completed=False)

    def send(self, api: Api, sess: Sess, message: str, **extra: str) -> Any:
        body = {"chat_session_id": sess.id, "message": message, **extra}
        return api.stream("POST", f"{BASE}/stream_chat", "stream_chat", json=body)

    def opened(self, stream: Stream, what: str) -> Event:
        status = stream.response.status_code
        if status != 200:  # (a refusal, read whole by Api.stream)
            raise Disagreement(
                "answer", f"{what}: answered {status} {stream.response.text[:200]!r}"
            )
        start = stream.next()
        expect(start is not None and start.kind == "start", "stream", f"{what}: began {start}")
        assert start is not None
        return start

    def turn(
        self, conv: Conv, sess: Sess, message: str, events: list[Event], what: str, kind: str
    ) -> tuple[str, str]:
        """Check a whole reply and add it (and its user message) to the model: its text and
        finish reason."""
        text, end = whole_reply(events, what, session=sess, model=self.model)
        finish = end.get("finish_reason")
        known = self.model.reply(sess, message)
        if finish != "cancelled" and known is not None:
            expect((text, finish) == known, kind, f"{what}: {text!r} ({finish}), model {known}")
        elif known is not None:
            expect(known[0].startswith(text), kind, f"{what}: cancelled at {text!r}, not a prefix")
        start = events[0].data
        conv.messages += [
            Msg("user", message, "completed", sess.id, start.get("user_message_id")),
            Msg("assistant", text, STATUS_OF.get(str(finish), "failed"), sess.id,
                start.get("message_id"), finish),
        ]  # fmt: skip
        conv.activity = self.tick()
        return text, str(finish)

    def stored_tail(self, org: Org, conv: Conv, count: int) -> None:
        """The conversation's last `count` messages are stored as the model has them."""
        offset = len(conv.messages) - count
        page = self.messages_page(org, conv, count, offset)
        self.same_messages(conv.messages[offset:], page["messages"], conv, offset)

    # -- rules --------------------------------------------------------------------------------
    @precondition(has_active_session)
    @rule(data=st.data(), message=messages)
    def stream_a_reply(self, data: st.DataObject, message: str) -> None:
        org, conv, sess = self.pick_active(data)
        with self.send(self.api(org), sess, message) as stream:
            self.opened(stream, "stream_chat")
            stream.rest()
        self.turn(conv, sess, message, stream.seen, "stream_chat", "stream")
        self.stored_tail(org, conv, 2)

    @precondition(has_active_session)
    @rule(
        data=st.data(),
        message=long_messages,
        keep=st.integers(0, 5),
        by=st.sampled_from(["Last-Event-ID", "after"]),
    )
    def reattach(self, data: st.DataObject, message: str, keep: int, by: str) -> None:
        """Leave a stream after `keep` content events, come back after the last id seen: the
        rest exactly once; the whole replayed; nothing after the end (204)."""
        org, conv, sess = self.pick_active(data)
        api = self.api(org)
        with self.send(api, sess, message) as stream:
            start = self.opened(stream, "stream_chat")
            for _ in range(keep):
                if (event := stream.next()) is None or event.kind == "end":
                    break
        seen, last = stream.seen, stream.seen[-1]
        where = {"chat_session_id": sess.id, "message_id": start.data["message_id"]}
        if last.kind != "end":
            params, headers = dict(where), {}
            if by == "after":
                params["after"] = str(last.id)
            else:
                headers["Last-Event-ID"] = str(last.id)
            with api.stream(
                "GET", f"{BASE}/stream", "reattach", params=params, headers=headers
            ) as again:
                expect(again.response.status_code == 200, "reattach", f"{again.response}")
                rest = again.rest()
            rest_of_reply(rest, "the re-attached stream", kind="reattach",
                          before=text_of(seen), after=last.id)  # fmt: skip
            seen = seen + rest
        whole_text, _ = self.turn(conv, sess, message, seen, "left and re-attached", "reattach")
        with api.stream("GET", f"{BASE}/stream", "replay", params=where) as replay:
            expect(replay.response.status_code == 200, "reattach", f"replay: {replay.response}")
            replayed, _ = whole_reply(replay.rest(), "replay", session=sess, model=self.model)
        expect(replayed == whole_text, "reattach", f"replayed {replayed!r}, was {whole_text!r}")
        end_id = str(len(whole_text) + 2)
        after_end = api.call(
            "GET", f"{BASE}/stream", params=where, headers={"Last-Event-ID": end_id}
        )
        expect(after_end.status_code == 204, "reattach", f"after the end: {after_end.status_code}")
        self.stored_tail(org, conv, 2)

    @precondition(has_active_session)
    @rule(data=st.data(), message=long_messages, keep=st.integers(0, 3), by_id=st.booleans())
    def cancel(self, data: st.DataObject, message: str, keep: int, by_id: bool) -> None:
        """Cancel a running reply: it ends `cancelled` with what was written, stored so;
        a cancel too late says so (false) and the reply is whole."""
        org, conv, sess = self.pick_active(data)
        api = self.api(org)
        body = {"chat_session_id": sess.id}
        cancelled = None
        with self.send(api, sess, message) as stream:
            start = self.opened(stream, "stream_chat")
            for _ in range(keep):
                if (event := stream.next()) is None or event.kind == "end":
                    break
            if by_id:
                body["message_id"] = start.data["message_id"]
            if not stream.ended:
                answer = api.json(api.call("POST", f"{BASE}/cancel", json=body), 200, "cancel")
                cancelled = answer.get("cancelled")
                expect(answer.get("chat_session_id") == sess.id, "cancel", f"answer {answer}")
                stream.rest()
        _, finish = self.turn(conv, sess, message, stream.seen, "cancelled", "cancel")
        expect(
            (finish == "cancelled") == bool(cancelled),
            "cancel",
            f"cancel answered cancelled={cancelled}, the reply ended {finish}",
        )
        again = api.json(api.call("POST", f"{BASE}/cancel", json=body), 200, "cancel again")
        expect(again.get("cancelled") is False, "cancel", f"nothing runs, yet: {again}")
        self.stored_tail(org, conv, 2)

    @precondition(has_active_session)
    @rule(
        data=st.data(),
        mode=st.sampled_from(["enqueue", "reject", "interrupt"]),
        first=long_messages,
        second=cs.words(8),
        keep=st.integers(0, 2),
    )
    def second_message_while_replying(
        self, data: st.DataObject, mode: str, first: str, second: str, keep: int
    ) -> None:
        """enqueue: both replies whole, in turn; reject: 409 session_busy, the first whole;
        interrupt: the first cancelled (or over already), the second whole; stored in turn."""
        org, conv, sess = self.pick_active(data)
        api = self.api(org)
        b_events: list[Event] | None = None
        with self.send(api, sess, first) as a:
            self.opened(a, "the first message")
            for _ in range(keep):
                if (event := a.next()) is None or event.kind == "end":
                    break
            with self.send(api, sess, second, multitask=mode) as b:
                status = b.response.status_code
                if mode == "reject" and status == 409:
                    code = b.response.json()["error"]["code"]
                    expect(code == "session_busy", "multitask", f"reject answered {code}")
                else:
                    self.opened(b, f"a second message ({mode})")
                    b.rest()
                    b_events = b.seen
            a.rest()
        what = f"the first message, then one to {mode}"
        _, first_finish = self.turn(conv, sess, first, a.seen, what, "multitask")
        if mode != "interrupt":
            expect(
                first_finish != "cancelled",
                "multitask",
                f"{mode}: the running reply was stopped ({first_finish})",
            )
        if b_events is not None:
            self.turn(conv, sess, second, b_events, f"the second message ({mode})", "multitask")
        self.stored_tail(org, conv, 4 if b_events is not None else 2)

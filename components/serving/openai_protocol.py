"""The OpenAI-compatible API of KServe's Hugging Face runtime, as clients speak it (pure).

Shared by `scripts/predict.py --openai` and `scripts/loadtest.py --openai`, and by
the `models` output, so that all name the same paths and read answers the same way.

KServe at the pinned tag (python/kserve/kserve/protocol/rest/openai/endpoints.py)
serves, under the prefix "/openai" (KSERVE_OPENAI_ROUTE_PREFIX, not set by the
runtime): POST /v1/completions, POST /v1/chat/completions and GET /v1/models. The
request's `model` is the name the server registered, `--model_name={{.Name}}` in the
chart's kserve-huggingfaceserver runtime: the InferenceService's name. With
`"stream": true` the answer is Server-Sent Events: one `data: <json>` line per
chunk, a blank line after each, and `data: [DONE]` at the end. vLLM's completion
chunks carry `usage` on the chunk that finishes a choice
(huggingfaceserver/vllm/vllm_completions.py); the Hugging Face backend's chunks do
not, so the tokens of a stream are then counted as the chunks that carry text.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Optional

PREFIX = "/openai"
COMPLETIONS = "completions"
CHAT = "chat"
KINDS = (COMPLETIONS, CHAT)
PATHS = {COMPLETIONS: f"{PREFIX}/v1/completions", CHAT: f"{PREFIX}/v1/chat/completions"}
MODELS_PATH = f"{PREFIX}/v1/models"
DONE = "[DONE]"
DEFAULT_MAX_TOKENS = 64
DEFAULT_PROMPT = "Kubernetes is"


def request_body(kind: str, model: str, prompt: str, max_tokens: int, stream: bool) -> bytes:
    """A completions request (`prompt`) or a chat request (one user message)."""
    body: dict = {"model": model, "max_tokens": max_tokens, "stream": stream}
    if kind == CHAT:
        body["messages"] = [{"role": "user", "content": prompt}]
    elif kind == COMPLETIONS:
        body["prompt"] = prompt
    else:
        raise ValueError(f"unknown OpenAI request kind {kind!r}: use {' or '.join(KINDS)}")
    return json.dumps(body, separators=(",", ":")).encode()


def chunk_text(chunk: dict) -> str:
    """The text a completion or chat answer (or one streamed chunk of it) carries
    in its first choice: `text`, or the chat `message`/`delta` content."""
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    if isinstance(choice.get("text"), str):
        return choice["text"]
    for field in ("delta", "message"):
        part = choice.get(field)
        if isinstance(part, dict) and isinstance(part.get("content"), str):
            return part["content"]
    return ""


def completion_tokens(chunk: dict) -> Optional[int]:
    usage = chunk.get("usage") if isinstance(chunk, dict) else None
    value = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else None


@dataclass(frozen=True)
class Answer:
    text: str
    tokens: Optional[int]   # completion tokens as the server counted them, if it did
    chunks: int = 0         # streamed chunks that carried text (0: not streamed)


def parse_answer(body: dict) -> Answer:
    """A non-streamed answer: `choices[0]` and `usage`."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise ValueError("the answer has no 'choices' list")
    return Answer(chunk_text(body), completion_tokens(body))


class EventStream:
    """Server-Sent Events fed in pieces as they arrive (`feed`), read as OpenAI
    chunks: the text, the chunks that carried some, the server's token count if a
    chunk gave one, and whether `[DONE]` came."""

    def __init__(self) -> None:
        self._pending = b""
        self.texts: list[str] = []
        self.text_chunks = 0
        self.usage_tokens: Optional[int] = None
        self.done = False
        self.errors: list[str] = []

    def feed(self, data: bytes) -> int:
        """Reads every complete line in `data` (and what was left over); returns how
        many chunks with text it found."""
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        found = 0
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if not line.startswith("data:"):
                continue  # blank separators, comments (": ..."), event/id fields
            payload = line[len("data:"):].strip()
            if payload == DONE:
                self.done = True
                continue
            try:
                chunk = json.loads(payload)
            except ValueError:
                self.errors.append(f"a data line that is not JSON: {payload[:80]!r}")
                continue
            if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
                self.errors.append(str(chunk["error"])[:200])
                continue
            text = chunk_text(chunk)
            if text:
                self.texts.append(text)
                self.text_chunks += 1
                found += 1
            tokens = completion_tokens(chunk)
            if tokens is not None:
                self.usage_tokens = tokens
        return found

    def finish(self) -> None:
        """The stream ended: a last line without a newline is read too."""
        if self._pending:
            self.feed(b"\n")

    @property
    def tokens(self) -> int:
        """The server's count when it gave one, else the chunks that carried text."""
        return self.usage_tokens if self.usage_tokens is not None else self.text_chunks

    def answer(self) -> Answer:
        return Answer("".join(self.texts), self.usage_tokens, self.text_chunks)


def read_stream(pieces: Iterable[bytes]) -> EventStream:
    stream = EventStream()
    for piece in pieces:
        stream.feed(piece)
    stream.finish()
    return stream

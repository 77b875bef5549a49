"""A V1 model server on loopback for the load test's benchmark (asyncio, HTTP/1.1
keep-alive): answers every `POST /v1/models/<name>:predict` with fixed
predictions, optionally after a delay. Not a model: a stand-in fast enough that
the client, not the server, is what the benchmark measures.
"""
from __future__ import annotations

import asyncio
import json
import socket

ANSWER = json.dumps({"predictions": [{"prediction": 0, "key": "1",
                                      "scores": [0.91, 0.02, 0.03, 0.01, 0.02, 0.01]}]}).encode()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            if delay:
                await asyncio.sleep(delay)
            writer.write(response)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(sock: socket.socket, delay: float = 0.0) -> None:
    server = await asyncio.start_server(lambda r, w: _serve(r, w, delay), sock=sock, backlog=1024)
    async with server:
        await server.serve_forever()


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(1024)
    return sock


def run_forever(sock: socket.socket, delay: float = 0.0) -> None:
    asyncio.run(serve(sock, delay))

"""Subscriptions (and queries) over websockets with the graphql-transport-ws protocol.

The protocol (the ``graphql-ws`` library's, the one GraphiQL and Apollo
speak): the client offers the ``graphql-transport-ws`` subprotocol, sends
``connection_init`` within ``connection_init_timeout`` seconds and gets
``connection_ack``; then each ``subscribe`` (with an ``id``) streams ``next``
messages until ``complete``, from either side. ``ping`` gets ``pong``.
Breaches close the socket with the protocol's codes: 4400 bad message, 4401
subscribe before ack, 4406 subprotocol not offered, 4408 init timeout, 4409
duplicate id, 4429 second init.

A subscription resolver is an async generator; fed by
:mod:`covet.channels`, its events reach every worker::

    @strawberry.subscription
    async def comment_added(self, info, post_id: strawberry.ID) -> AsyncGenerator[CommentType]:
        async with channels.subscribe([f"comments:{post_id}"]) as events:
            async for event in events:
                if isinstance(event, Message):
                    yield await Comment.objects.get(id=event.data["id"])

The ``connection_init`` payload (a token, say) is in
``info.context.state["connection_params"]``. Each event is executed with
fresh batched loaders,
so relations of the yielded object are read when the event is sent, not
served from an earlier event's cache. Documents go through the same
validation and limits as HTTP requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from typing import TYPE_CHECKING, Any

from graphql import ExecutionResult, OperationType, subscribe

from covet import _json
from covet.exceptions import WebSocketDisconnect
from covet.graphql.context import GraphQLContext
from covet.graphql.loaders import Loaders

if TYPE_CHECKING:
    from covet.graphql.http import GraphQL
    from covet.websockets import WebSocket

__all__ = ("PROTOCOL", "serve_websocket")

#: The websocket subprotocol spoken.
PROTOCOL = "graphql-transport-ws"


async def serve_websocket(graphql: GraphQL, websocket: WebSocket) -> None:
    """Speak graphql-transport-ws on ``websocket`` until either side closes."""
    if not graphql.subscriptions:
        await websocket.close(4406, "Subscriptions are disabled on this endpoint.")
        return
    if PROTOCOL not in websocket.scope.get("subprotocols", ()):
        await websocket.close(4406, "Subprotocol not acceptable")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    connection = _Connection(graphql, websocket)
    try:
        await connection.run()
    except WebSocketDisconnect:
        pass
    finally:
        await connection.stop_all()


class _Connection:
    def __init__(self, graphql: GraphQL, websocket: WebSocket) -> None:
        self.graphql = graphql
        self.websocket = websocket
        self.acknowledged = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.connection_params: dict[str, Any] = {}

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.websocket.send_text(_json.dumps(message).decode())

    async def run(self) -> None:
        try:
            async with asyncio.timeout(self.graphql.connection_init_timeout):
                first = await self.receive()
        except TimeoutError:
            await self.websocket.close(4408, "Connection initialisation timeout")
            return
        if first is None:
            return
        if first.get("type") == "subscribe":
            await self.websocket.close(4401, "Unauthorized")
            return
        if first.get("type") != "connection_init":
            await self.websocket.close(4400, "Expected connection_init first.")
            return
        payload = first.get("payload")
        if payload is not None and not isinstance(payload, dict):
            await self.websocket.close(4400, "connection_init payload must be an object.")
            return
        self.acknowledged = True
        self.connection_params = payload or {}
        await self.send({"type": "connection_ack"})
        while True:
            message = await self.receive()
            if message is None:
                return
            if not await self.handle(message):
                return

    async def receive(self) -> dict[str, Any] | None:
        """Return the next message, or None after closing the socket for a malformed one."""
        text = await self.websocket.receive_text()
        try:
            message = _json.loads(text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.websocket.close(4400, "Invalid message.")
            return None
        return message

    async def handle(self, message: dict[str, Any]) -> bool:
        kind = message["type"]
        if kind == "connection_init":
            await self.websocket.close(4429, "Too many initialisation requests")
            return False
        if kind == "ping":
            await self.send({"type": "pong"})
            return True
        if kind == "pong":
            return True
        operation_id = message.get("id")
        if kind == "complete" and isinstance(operation_id, str):
            task = self.operations.pop(operation_id, None)
            if task is not None:
                task.cancel()
            return True
        if kind == "subscribe" and isinstance(operation_id, str) and operation_id:
            if operation_id in self.operations:
                await self.websocket.close(4409, f"Subscriber for {operation_id} already exists")
                return False
            payload = message.get("payload")
            task = asyncio.create_task(self.operate(operation_id, payload))
            self.operations[operation_id] = task
            task.add_done_callback(lambda _: self.forget(operation_id, task))
            return True
        await self.websocket.close(4400, f"Invalid message of type {kind!r}.")
        return False

    def forget(self, operation_id: str, task: asyncio.Task[None]) -> None:
        if self.operations.get(operation_id) is task:
            del self.operations[operation_id]

    async def operate(self, operation_id: str, payload: Any) -> None:
        from covet.graphql.http import _RequestError

        graphql = self.graphql
        try:
            entry, operation, variables = graphql.prepare(
                payload, self.websocket, method="WEBSOCKET"
            )
        except _RequestError as exc:
            errors = [dict(error.formatted) for error in exc.errors]
            await self.send({"id": operation_id, "type": "error", "payload": errors})
            return
        operation_name = operation.name.value if operation.name else None
        schema = graphql.graphql_schema
        context = await graphql.make_context(self.websocket)
        if isinstance(context, GraphQLContext):
            context.state["connection_params"] = self.connection_params
        if operation.operation is not OperationType.SUBSCRIPTION:
            result = await graphql.run(self.websocket, payload, method="WEBSOCKET", context=context)
            await self.send_result(operation_id, result)
            await self.send({"id": operation_id, "type": "complete"})
            return
        stream: Any = subscribe(
            schema,
            entry.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
        )
        if inspect.isawaitable(stream):
            stream = await stream
        if isinstance(stream, ExecutionResult):
            errors = [dict(error.formatted) for error in stream.errors or ()]
            await self.send({"id": operation_id, "type": "error", "payload": errors})
            return
        try:
            async for result in stream:
                await self.send_result(operation_id, result)
                # The next event executes when the stream is pulled again: give it
                # fresh loaders, so it never reads rows cached by this one.
                if isinstance(context, GraphQLContext):
                    context.loaders = Loaders()
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()
        await self.send({"id": operation_id, "type": "complete"})

    async def send_result(self, operation_id: str, result: ExecutionResult) -> None:
        body = self.graphql._format(result, self.websocket)
        await self.send({"id": operation_id, "type": "next", "payload": body})

    async def stop_all(self) -> None:
        tasks = list(self.operations.values())
        self.operations.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

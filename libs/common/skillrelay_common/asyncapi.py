"""An AsyncAPI 3.0 document of every NATS subject, generated from ``subjects.py`` and the msgspec
message types (``make asyncapi`` writes ``docs/asyncapi.json``; a test keeps that file current).

Request endpoints are ``receive`` operations of the answering service with a ``reply``; events and
audit records are ``send`` operations of their producer. Subjects built at run time (worker calls,
per-call event subjects, SSE event storage, edge presence) are described in ``DYNAMIC`` below.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from skillrelay_common import subjects
from skillrelay_common.audit import RECORDS_PER_MESSAGE
from skillrelay_common.schemas import edge
from skillrelay_common.schemas.audit import AUDIT_KINDS, AuditRecord
from skillrelay_common.schemas.base import Unavailable
from skillrelay_worker import protocol

REF = "#/components/schemas/{name}"
DOCUMENT_VERSION = "1.0.0"


@dataclass(frozen=True)
class DynamicChannel:
    """A subject family not declared as an ``Endpoint``/``Event`` (its address has parameters)."""

    id: str
    address: str
    messages: tuple[type[Any], ...]
    action: str  # "send" or "receive", from the point of view of ``party``
    party: str
    description: str
    parameters: dict[str, str]
    stream: str | None = None
    replies: tuple[type[Any], ...] = ()


DYNAMIC: tuple[DynamicChannel, ...] = (
    DynamicChannel(
        "worker_call",
        "worker.{ownerId}.{subject}",
        (protocol.WorkerCall,),
        "receive",
        "worker",
        "Run one worker handler; the owner's workers of a subject form the queue group "
        "'worker.<ownerId>.<subject>'. The NATS reply subject is the edge's per-call events subject. "
        "Only workers with a credential of that owner may subscribe (docs/security.md).",
        {
            "ownerId": "the owner of the ability (its worker credential's owner)",
            "subject": "the handler's subject (dot-separated tokens), relative to the owner",
        },
    ),
    DynamicChannel(
        "worker_events",
        "workerev.{edgeKey}.{ownerId}.{callId}",
        (
            protocol.WorkerProgress,
            protocol.WorkerLog,
            protocol.WorkerHeartbeat,
            protocol.WorkerResult,
            protocol.WorkerError,
            protocol.WorkerClientRequest,
        ),
        "receive",
        "edge",
        "What a worker sends back during one call, in order, ending with one WorkerResult or "
        "WorkerError. A WorkerClientRequest is a NATS request answered with WorkerClientAnswer.",
        {
            "edgeKey": "the edge replica holding the call",
            "ownerId": "the owner of the ability (the edge drops events under another owner)",
            "callId": "the call",
        },
        replies=(protocol.WorkerClientAnswer,),
    ),
    DynamicChannel(
        "worker_cancel",
        "workerctl.{ownerId}.cancel",
        (protocol.WorkerCancel,),
        "receive",
        "worker",
        "Broadcast to every worker of the owner; the one running the call cancels its handler.",
        {"ownerId": "the owner of the ability"},
    ),
    DynamicChannel(
        "worker_adopt",
        "workerctl.{ownerId}.adopt",
        (protocol.WorkerAdopt,),
        "receive",
        "worker",
        "A NATS request broadcast to every worker of the owner when the edge replica holding a call "
        "died: the worker holding the call replies WorkerAdopted and sends the call's events with "
        "seq > after_seq, then every later one, to the adopting replica's events subject. No reply: "
        "nobody holds the call.",
        {"ownerId": "the owner of the ability"},
        replies=(protocol.WorkerAdopted,),
    ),
    DynamicChannel(
        "edge_replica_alive",
        "edge.replica.{edgeKey}.alive",
        (),
        "receive",
        "edge",
        "Liveness of one edge replica, asked before another replica adopts its streamed calls; "
        "'no responders' means the replica is gone.",
        {"edgeKey": "the edge replica asked about"},
    ),
    DynamicChannel(
        "edge_relay",
        "edge.relay.{edgeKey}",
        (edge.ClientResponseRelayed,),
        "receive",
        "edge",
        "A client's answer to a server-to-client request, handed to the edge replica holding the call.",
        {"edgeKey": "the edge replica holding the call"},
    ),
    DynamicChannel(
        "edge_upstream",
        "edge.upstream.{edgeKey}",
        (edge.ParkedAnswer,),
        "receive",
        "edge",
        "A 2026-07-28 client's answers to a 2025-session upstream's question, handed to the edge "
        "replica holding that upstream's open request; it replies with the call's next step. "
        "'No responders' means that replica is gone.",
        {"edgeKey": "the edge replica holding the parked call"},
        replies=(edge.ParkedStep,),
    ),
    DynamicChannel(
        "edge_heartbeat",
        subjects.EDGE_HEARTBEAT_SUBJECT,
        (),
        "send",
        "edge",
        "Core NATS presence of edge replicas, so auth knows whose acknowledgement a rotation awaits.",
        {},
    ),
    DynamicChannel(
        "edge_mcp_cancel",
        subjects.EDGE_CANCEL_SUBJECT,
        (),
        "send",
        "edge",
        "A client's notifications/cancelled, broadcast to every edge replica (the request may run on "
        "another one).",
        {},
    ),
    DynamicChannel(
        "mcp_events",
        "mcp.events.{sessionKey}.{streamId}",
        (),
        "send",
        "edge",
        "Server-sent events of one MCP session stream, kept so a client may resume with Last-Event-ID "
        "on any edge replica.",
        {"sessionKey": "hash of the MCP session id", "streamId": "one SSE stream of the session"},
        stream=subjects.MCP_EVENTS.name,
    ),
    DynamicChannel(
        "mcp_broadcast",
        "mcp.events.integration.{integrationKey}",
        (),
        "send",
        "edge",
        "Notifications for every listening stream of one integration (list_changed, resources/updated), "
        "stored once so any replica can replay them on resumption.",
        {"integrationKey": "hash of the integration id"},
        stream=subjects.MCP_EVENTS.name,
    ),
    DynamicChannel(
        "mcp_live",
        "mcp.live.{sessionKey}.{streamId}",
        (),
        "send",
        "edge",
        "Core NATS live copy of an event of one MCP session stream (header Mcp-Seq: its MCP_EVENTS "
        "sequence); every edge replica holds one wildcard subscription and fans out in process.",
        {"sessionKey": "hash of the MCP session id", "streamId": "one SSE stream of the session"},
    ),
    DynamicChannel(
        "mcp_subscriptions",
        "mcp.subscriptions.{sessionKey}",
        (),
        "send",
        "edge",
        "A session's resource subscriptions changed (JSON list of URIs), for the replica holding its "
        "GET stream.",
        {"sessionKey": "hash of the MCP session id"},
    ),
)


def _channel_id(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", address.replace("*", "any").replace(">", "all")).strip("_")


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/{kind}/{name}"}


def _union_members(annotation: Any) -> list[type[Any]]:
    args = getattr(annotation, "__args__", None)
    return list(args) if args else [annotation]


def _event_address(subject: str) -> tuple[str, dict[str, Any]]:
    """``events.registry.*.*`` → ``events.registry.{entity}.{verb}`` (the naming rule's positions)."""
    names = ["events", "service", "entity", "verb"]
    parts = subject.split(".")
    parameters: dict[str, Any] = {}
    for index, part in enumerate(parts):
        if part == "*":
            name = names[index] if index < len(names) else f"token{index}"
            parts[index] = "{" + name + "}"
            parameters[name] = {"description": f"subject token {index + 1}"}
    return ".".join(parts), parameters


class _Builder:
    def __init__(self) -> None:
        self.types: list[type[Any]] = []
        self.messages: dict[str, Any] = {}
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}

    def message(self, message_type: type[Any]) -> dict[str, str]:
        name = message_type.__name__
        if name not in self.messages:
            self.types.append(message_type)
            doc = (message_type.__doc__ or "").strip()
            self.messages[name] = {
                "name": name,
                "contentType": "application/json",
                "payload": {"$ref": REF.format(name=name)},
                **({"summary": " ".join(doc.split())} if doc else {}),
            }
        return _ref("components/messages", name)

    def audit_parcel(self) -> dict[str, str]:
        self.message(AuditRecord)
        self.messages["AuditParcel"] = {
            "name": "AuditParcel",
            "contentType": "application/cloudevents-batch+json",
            "payload": {
                "type": "array",
                "items": {"$ref": REF.format(name="AuditRecord")},
                "maxItems": RECORDS_PER_MESSAGE,
            },
            "summary": "Audit records of one subject stored as one message (CloudEvents JSON batch).",
        }
        return _ref("components/messages", "AuditParcel")

    def free_message(self, channel_id: str) -> dict[str, str]:
        name = f"{channel_id}_payload"
        self.messages[name] = {
            "name": name,
            "contentType": "application/json",
            "payload": {"type": "object", "description": "a JSON object (type defined by its producer)"},
        }
        return _ref("components/messages", name)

    def channel(
        self,
        channel_id: str,
        address: str | None,
        messages: list[dict[str, str]],
        description: str = "",
        parameters: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, str]:
        body: dict[str, Any] = {
            "address": address,
            "messages": {ref["$ref"].rsplit("/", 1)[1]: ref for ref in messages},
        }
        if description:
            body["description"] = description
        if parameters:
            body["parameters"] = parameters
        body.update(extra or {})
        self.channels[channel_id] = body
        return _ref("channels", channel_id)

    def operation_messages(self, channel_id: str) -> list[dict[str, str]]:
        return [
            {"$ref": f"#/channels/{channel_id}/messages/{name}"}
            for name in self.channels[channel_id]["messages"]
        ]

    def endpoint(self, endpoint: subjects.Endpoint[Any, Any]) -> None:
        channel_id = _channel_id(endpoint.subject)
        request = self.message(endpoint.request)
        members: list[type[Any]] = [*_union_members(endpoint.reply), Unavailable]
        replies = [self.message(member) for member in members]
        channel = self.channel(
            channel_id,
            endpoint.subject,
            [request],
            endpoint.description,
            extra={"x-nats-queue-group": "" if endpoint.broadcast else endpoint.service},
        )
        reply_id = f"{channel_id}_reply"
        reply_channel = self.channel(
            reply_id, None, replies, f"replies to {endpoint.subject} (Unavailable: no answer in time)"
        )
        self.operations[f"{endpoint.service}_answers_{channel_id}"] = {
            "action": "receive",
            "channel": channel,
            "summary": endpoint.description or f"{endpoint.service} answers {endpoint.subject}",
            "messages": self.operation_messages(channel_id),
            "reply": {
                "address": {
                    "location": "$message.header#/replyTo",
                    "description": "the NATS reply inbox of the request",
                },
                "channel": reply_channel,
                "messages": self.operation_messages(reply_id),
            },
            "x-answered-by": endpoint.service,
            "x-broadcast": endpoint.broadcast,
        }

    def event(self, name: str, event: subjects.Event[Any]) -> None:
        channel_id = _channel_id(name.lower())
        address, parameters = _event_address(event.subject)
        producer = event.subject.split(".")[1]
        channel = self.channel(
            channel_id,
            address,
            [self.message(event.payload)],
            event.description,
            parameters,
            extra={"x-jetstream-stream": event.stream},
        )
        self.operations[f"{producer}_publishes_{channel_id}"] = {
            "action": "send",
            "channel": channel,
            "summary": f"{producer} publishes {event.subject} on JetStream stream {event.stream}",
            "messages": self.operation_messages(channel_id),
        }

    def audit(self) -> None:
        channel = self.channel(
            "audit",
            "audit.{integrationId}.{kind}",
            [self.message(AuditRecord), self.audit_parcel()],
            "Audit records (CloudEvents-style envelope) of every MCP request, tool call, auth failure, "
            "token rotation, OAuth grant and session change; never a token or secret. The kind may "
            "itself contain dots (tool.call). A message holds one record, or a parcel of records of "
            "its subject (group commit: one disk sync per message).",
            {
                "integrationId": {"description": "the integration (mcpserver_…)"},
                "kind": {"enum": list(AUDIT_KINDS), "description": "what happened"},
            },
            extra={"x-jetstream-stream": subjects.AUDIT_STREAM.name},
        )
        self.operations["services_publish_audit"] = {
            "action": "send",
            "channel": channel,
            "summary": "every service records audit events through AuditRecorder (never blocking the caller)",
            "messages": self.operation_messages("audit"),
        }

    def dynamic(self, spec: DynamicChannel) -> None:
        messages = [self.message(t) for t in spec.messages] or [self.free_message(spec.id)]
        extra = {"x-jetstream-stream": spec.stream} if spec.stream else {}
        channel = self.channel(
            spec.id,
            spec.address,
            messages,
            spec.description,
            {name: {"description": text} for name, text in spec.parameters.items()},
            extra,
        )
        operation: dict[str, Any] = {
            "action": spec.action,
            "channel": channel,
            "summary": spec.description,
            "messages": self.operation_messages(spec.id),
        }
        if spec.replies:
            reply_id = f"{spec.id}_reply"
            reply_channel = self.channel(reply_id, None, [self.message(t) for t in spec.replies])
            operation["reply"] = {
                "address": {"location": "$message.header#/replyTo"},
                "channel": reply_channel,
                "messages": self.operation_messages(reply_id),
            }
        self.operations[f"{spec.party}_{spec.action}s_{spec.id}"] = operation

    def schemas(self) -> dict[str, Any]:
        _, components = msgspec.json.schema_components(self.types, ref_template=REF)
        return {name: _asyncapi_schema(schema) for name, schema in sorted(components.items())}


def _asyncapi_schema(schema: Any) -> Any:
    """msgspec writes OpenAPI's ``discriminator: {propertyName, mapping}``; AsyncAPI's Schema Object
    wants just the property name."""
    if isinstance(schema, dict):
        converted = {key: _asyncapi_schema(value) for key, value in schema.items()}
        discriminator = converted.get("discriminator")
        if isinstance(discriminator, dict) and "propertyName" in discriminator:
            converted["discriminator"] = discriminator["propertyName"]
        return converted
    if isinstance(schema, list):
        return [_asyncapi_schema(item) for item in schema]
    return schema


def _named(kind: type[Any]) -> list[tuple[str, Any]]:
    return [(name, value) for name, value in vars(subjects).items() if isinstance(value, kind)]


def build_document() -> dict[str, Any]:
    builder = _Builder()
    for _, endpoint in _named(subjects.Endpoint):
        builder.endpoint(endpoint)
    for name, event in _named(subjects.Event):
        builder.event(name, event)
    builder.audit()
    for spec in DYNAMIC:
        builder.dynamic(spec)
    streams = {
        stream.name: {"subjects": list(stream.subjects), "maxAgeSeconds": stream.max_age_seconds}
        for _, stream in _named(subjects.Stream)
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Skillrelay NATS contract",
            "version": DOCUMENT_VERSION,
            "description": "Every NATS subject of Skillrelay. Generated from "
            "libs/common/skillrelay_common/subjects.py by `make asyncapi`; do not edit by hand. "
            "Messages are JSON (msgspec); request replies are tagged unions (field 'kind').",
            "x-jetstream-streams": streams,
        },
        "defaultContentType": "application/json",
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "SKILLRELAY_NATS_URL (JetStream enabled)",
            }
        },
        "channels": builder.channels,
        "operations": builder.operations,
        "components": {"messages": builder.messages, "schemas": builder.schemas()},
    }


def render() -> str:
    return json.dumps(build_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    """``python -m skillrelay_common.asyncapi [PATH]``: write the document (stdout without PATH)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        Path(args[0]).parent.mkdir(parents=True, exist_ok=True)
        Path(args[0]).write_text(render())
    else:
        sys.stdout.write(render())


if __name__ == "__main__":
    main()

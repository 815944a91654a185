"""A small HTTP service with an OpenAPI 3.1 document, for tests of ``openapi`` skillset sources: a
pet shelf with list, fetch, add and remove, that wants an API key header. Started on a free port in a
thread; ``requests`` records what it received (to check what the edge sent)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from skillrelay_devstack.embedded import free_port

API_KEY = "pet-api-key-for-tests"


def pet_document(base_url: str | None = None) -> dict[str, Any]:
    pet = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "tag": {"type": "string"}},
        "required": ["id", "name"],
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Pet shelf", "version": "1.0"},
        "components": {
            "schemas": {
                "Pet": pet,
                "NewPet": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "tag": {"type": "string", "nullable": True}},
                    "required": ["name"],
                },
                "PetList": {
                    "type": "object",
                    "properties": {"pets": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}},
                },
            },
            "parameters": {
                "PetId": {"name": "petId", "in": "path", "required": True, "schema": {"type": "integer"}}
            },
        },
        "paths": {
            "/pets": {
                "get": {
                    "operationId": "listPets",
                    "summary": "List the pets",
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                        {"name": "X-Request-Tag", "in": "header", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "the pets",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/PetList"}}
                            },
                        }
                    },
                },
                "post": {
                    "operationId": "addPet",
                    "summary": "Add a pet",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewPet"}}},
                    },
                    "responses": {
                        "201": {
                            "description": "added",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                        }
                    },
                },
                "put": {
                    "operationId": "uploadPetsCsv",
                    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}},
                    "responses": {"204": {"description": "replaced"}},
                },
            },
            "/pets/{petId}": {
                "parameters": [{"$ref": "#/components/parameters/PetId"}],
                "get": {
                    "operationId": "getPet",
                    "responses": {
                        "200": {
                            "description": "the pet",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                        },
                        "404": {"description": "no such pet"},
                    },
                },
                "delete": {"operationId": "removePet", "responses": {"204": {"description": "removed"}}},
            },
        },
    }
    if base_url is not None:
        document["servers"] = [{"url": base_url}]
    return document


class PetApi:
    """The service: ``url`` is its base URL, ``document_url`` where its OpenAPI document is served."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.document_url = f"{self.url}/openapi.json"
        self.requests: list[dict[str, Any]] = []
        self.pets: dict[int, dict[str, Any]] = {1: {"id": 1, "name": "Rex", "tag": "dog"}}
        # What ``/openapi.json`` answers (a test may change it to see a refresh pick the change up).
        self.document = pet_document()
        # What ``/openapi.yaml`` answers: the document as YAML unless a test sets its own text.
        self.yaml_document: str | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread: threading.Thread | None = None

    def start(self) -> PetApi:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                api.serve(self, "GET")

            def do_POST(self) -> None:
                api.serve(self, "POST")

            def do_DELETE(self) -> None:
                api.serve(self, "DELETE")

        return Handler

    def serve(self, http: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(http.path)
        length = int(http.headers.get("Content-Length", "0") or "0")
        raw = http.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": parts.path,
                    "query": parse_qs(parts.query),
                    "headers": {key.lower(): value for key, value in http.headers.items()},
                    "body": body,
                }
            )
        if parts.path == "/openapi.json":
            return _answer(http, 200, self.document)
        if parts.path == "/openapi.yaml":
            return _answer_text(
                http, 200, self.yaml_document or yaml.safe_dump(self.document), "application/yaml"
            )
        if http.headers.get("X-Api-Key") != API_KEY:
            return _answer(http, 401, {"error": "missing or wrong X-Api-Key"})
        segments = [segment for segment in parts.path.split("/") if segment]
        with self._lock:
            if segments == ["pets"] and method == "GET":
                limit = int(parse_qs(parts.query).get("limit", ["100"])[0])
                return _answer(http, 200, {"pets": list(self.pets.values())[:limit]})
            if segments == ["pets"] and method == "POST" and isinstance(body, dict):
                pet = {"id": max(self.pets, default=0) + 1, **body}
                self.pets[pet["id"]] = pet
                return _answer(http, 201, pet)
            if len(segments) == 2 and segments[0] == "pets" and segments[1].isdigit():
                pet_id = int(segments[1])
                if pet_id not in self.pets:
                    return _answer(http, 404, {"error": f"no pet {pet_id}"})
                if method == "DELETE":
                    del self.pets[pet_id]
                    return _answer(http, 204, None)
                return _answer(http, 200, self.pets[pet_id])
        return _answer(http, 404, {"error": "no such route"})


def _answer_text(http: BaseHTTPRequestHandler, status: int, text: str, content_type: str) -> None:
    body = text.encode()
    http.send_response(status)
    http.send_header("Content-Type", content_type)
    http.send_header("Content-Length", str(len(body)))
    http.end_headers()
    http.wfile.write(body)


def _answer(http: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    http.send_response(status)
    if payload is not None:
        http.send_header("Content-Type", "application/json")
    http.send_header("Content-Length", str(len(body)))
    http.end_headers()
    http.wfile.write(body)

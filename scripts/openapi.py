#!/usr/bin/env python3
"""Regenerates crates/vestnik-server/src/openapi.json: the Svix OSS OpenAPI operations Vestnik
serves, under Vestnik's own title, with our extensions and deviations described.

Usage: python3 scripts/openapi.py ../shared/reference/svix-oss-openapi.json
"""
import json
import sys

source = json.load(open(sys.argv[1]))
not_served = {"v1.authentication.app-portal-access"}
source["info"] = {
    "title": "Vestnik API",
    "version": "0.1.0",
    "description": (
        "Vestnik's management API. It follows the Svix OSS API (same paths, field names, "
        "pagination and errors) so the official Svix SDKs work against it. Extensions: "
        "`MessageAttemptOut.outcome` (success, timeout, dns, connection, tls, http_status, "
        "blocked_target, handler_error), `EndpointIn.headers`, and the inbound gateway: sources "
        "under `/api/v1/source` and `POST /in/{source_id}` (tag Inbound). Answers 501 (code `not_implemented`) for: "
        + ", ".join(sorted(not_served)) + ". Errors are `{code, detail}`; validation errors use "
        "the 422 `HTTPValidationError` shape; a body over the limit is 413 `payload_too_large`."
    ),
}
for path, ops in source["paths"].items():
    for method, op in ops.items():
        if isinstance(op, dict) and op.get("operationId") in not_served:
            op["responses"]["501"] = {"description": "Not implemented in this Vestnik version"}
        if isinstance(op, dict) and op.get("operationId") == "v1.endpoint.send-example":
            # Svix's server and SDKs answer 202 (as for creating a message); its document says 200.
            op["responses"]["202"] = op["responses"].pop("200")
schemas = source["components"]["schemas"]
schemas["MessageAttemptOut"]["properties"]["outcome"] = {
    "type": "string",
    "enum": ["success", "timeout", "dns", "connection", "tls", "http_status", "blocked_target",
             "handler_error"],
    "description": "Vestnik extension: why the attempt ended as it did.",
}
schemas["EndpointIn"]["properties"]["headers"] = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Vestnik extension: custom headers sent with every attempt.",
}
for path_ops in source["paths"].values():
    for op in path_ops.values():
        if isinstance(op, dict):
            op.get("responses", {}).setdefault(
                "413", {"description": "Payload Too Large"}
            ) if op.get("requestBody") else None


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema):
    return {"content": {"application/json": {"schema": schema}}}


def path_param(name, description):
    return {"in": "path", "name": name, "required": True, "schema": {"type": "string"},
            "description": description}


SOURCE = path_param("source_id", "The source's id (src_…) or uid.")
ERROR = {"description": "Error", **json_body(ref("HttpErrorOut"))}
VALIDATION = {"description": "Validation Error", **json_body(ref("HTTPValidationError"))}


def op(op_id, summary, ok, params=(), body=None, query=()):
    operation = {
        "operationId": op_id, "summary": summary, "tags": ["Inbound"],
        "parameters": list(params) + [
            {"in": "query", "name": name, "schema": {"type": "string"}, "description": text}
            for name, text in query
        ],
        "responses": {**ok, "401": ERROR, "404": ERROR, "422": VALIDATION},
    }
    if body:
        operation["requestBody"] = {"required": True, **json_body(body)}
        operation["responses"]["413"] = ERROR
    return operation


scheme_types = ["standard-webhooks", "stripe", "github", "shopify", "hmac", "bearer", "basic",
                "header", "none"]
schemas["InboundVerification"] = {
    "type": "object", "required": ["type"],
    "description": "How a source proves its requests (docs/operations.md, 'Verification presets').",
    "properties": {
        "type": {"type": "string", "enum": scheme_types},
        "header": {"type": "string", "description": "hmac, header: the header carrying the proof."},
        "algorithm": {"type": "string", "enum": ["sha256", "sha512"], "default": "sha256"},
        "encoding": {"type": "string", "enum": ["hex", "base64"], "default": "hex"},
        "prefix": {"type": "string", "description": "hmac: a prefix before the signature, e.g. sha256="},
        "timestampHeader": {"type": "string", "description": "hmac: sign `timestamp.body` and check the tolerance."},
    },
}
source_config = {
    "verification": ref("InboundVerification"),
    "toleranceSeconds": {"type": "integer", "default": 300, "minimum": 1, "maximum": 86400},
    "allowedIps": {"type": "array", "items": {"type": "string", "format": "cidr"}},
    "eventId": {"type": "object", "properties": {"header": {"type": "string"},
                                                  "jsonPointer": {"type": "string"}}},
    "forwardHeaders": {"type": "array", "items": {"type": "string"}},
    "maxBodyBytes": {"type": "integer", "default": 1048576, "maximum": 16777216},
}
schemas["InboundDestinationIn"] = {
    "type": "object", "description": "Exactly one of url and handler.",
    "properties": {"url": {"type": "string", "format": "uri"}, "handler": {"type": "string"},
                   "eventTypes": {"type": "array", "items": {"type": "string"}}},
}
schemas["InboundDestinationOut"] = {
    "type": "object", "required": ["endpointId", "disabled"],
    "properties": {"endpointId": {"type": "string"}, "url": {"type": "string"},
                   "handler": {"type": "string"}, "disabled": {"type": "boolean"},
                   "eventTypes": {"type": "array", "items": {"type": "string"}, "nullable": True}},
}
schemas["SourceIn"] = {
    "type": "object", "required": ["name", "verification"],
    "properties": {"name": {"type": "string"}, "uid": {"type": "string"},
                   "secret": {"type": "string", "description": "Generated when omitted (except stripe, shopify)."},
                   **source_config,
                   "destinations": {"type": "array", "maxItems": 20, "items": ref("InboundDestinationIn")}},
}
schemas["SourceOut"] = {
    "type": "object",
    "required": ["id", "name", "ingestPath", "appId", "destinations", "createdAt", "updatedAt"],
    "properties": {"id": {"type": "string"}, "uid": {"type": "string", "nullable": True},
                   "name": {"type": "string"}, "ingestPath": {"type": "string"},
                   **source_config, "appId": {"type": "string"},
                   "destinations": {"type": "array", "items": ref("InboundDestinationOut")},
                   "createdAt": {"type": "string", "format": "date-time"},
                   "updatedAt": {"type": "string", "format": "date-time"}},
}
schemas["InboundRequestOut"] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "receivedAt": {"type": "string", "format": "date-time"},
        "remoteAddr": {"type": "string"}, "method": {"type": "string"}, "path": {"type": "string"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "bodySize": {"type": "integer"},
        "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
        "handling": {"type": "string", "nullable": True,
                     "enum": ["pending", "delivered", "failing", "exhausted"]},
        "reason": {"type": "string", "nullable": True},
        "eventId": {"type": "string", "nullable": True}, "msgId": {"type": "string", "nullable": True},
        "duplicateOf": {"type": "string", "nullable": True},
        "body": {"type": "string", "description": "Only when reading one request, if UTF-8."},
        "bodyBase64": {"type": "string", "description": "Only when reading one request, if not UTF-8."},
    },
}
for name, item in [("ListResponse_SourceOut_", "SourceOut"),
                   ("ListResponse_InboundRequestOut_", "InboundRequestOut")]:
    schemas[name] = {
        "type": "object", "required": ["data", "done"],
        "properties": {"data": {"type": "array", "items": ref(item)}, "done": {"type": "boolean"},
                       "iterator": {"type": "string", "nullable": True},
                       "prevIterator": {"type": "string", "nullable": True}},
    }
key = {"type": "object", "properties": {"key": {"type": "string"}}}
replayed = {"202": {"description": "Queued", **json_body(
    {"type": "object", "properties": {"replayed": {"type": "integer"}}})}}
paging = [("limit", "1–250"), ("iterator", "from a previous page"), ("order", "ascending|descending")]
paths = source["paths"]
paths["/api/v1/source"] = {
    "get": op("v1.source.list", "List Sources",
              {"200": {"description": "", **json_body(ref("ListResponse_SourceOut_"))}}, query=paging),
    "post": op("v1.source.create", "Create Source",
               {"201": {"description": "", **json_body(ref("SourceOut"))}}, body=ref("SourceIn")),
}
paths["/api/v1/source/{source_id}"] = {
    "get": op("v1.source.get", "Get Source", {"200": {"description": "", **json_body(ref("SourceOut"))}}, [SOURCE]),
    "put": op("v1.source.update", "Update Source",
              {"200": {"description": "", **json_body(ref("SourceOut"))}}, [SOURCE], body=ref("SourceIn")),
    "delete": op("v1.source.delete", "Delete Source", {"204": {"description": "Deleted"}}, [SOURCE]),
}
paths["/api/v1/source/{source_id}/secret"] = {
    "get": op("v1.source.get-secret", "Get Source Secret", {"200": {"description": "", **json_body(key)}}, [SOURCE]),
}
paths["/api/v1/source/{source_id}/secret/rotate"] = {
    "post": op("v1.source.rotate-secret", "Rotate Source Secret",
               {"200": {"description": "The new secret", **json_body(key)}}, [SOURCE],
               body={"type": "object", "properties": {"key": {"type": "string"},
                                                      "gracePeriodSeconds": {"type": "integer", "default": 86400}}}),
}
paths["/api/v1/source/{source_id}/request"] = {
    "get": op("v1.source.list-requests", "List Received Requests",
              {"200": {"description": "", **json_body(ref("ListResponse_InboundRequestOut_"))}}, [SOURCE],
              query=paging + [("status", "accepted|duplicate|rejected|pending|delivered|failing|exhausted"),
                              ("since", "RFC 3339"), ("until", "RFC 3339")]),
}
REQUEST = path_param("request_id", "The request's id (req_…).")
paths["/api/v1/source/{source_id}/request/{request_id}"] = {
    "get": op("v1.source.get-request", "Get Received Request",
              {"200": {"description": "", **json_body(ref("InboundRequestOut"))}}, [SOURCE, REQUEST]),
}
paths["/api/v1/source/{source_id}/request/{request_id}/replay"] = {
    "post": op("v1.source.replay-request", "Replay Received Request", replayed, [SOURCE, REQUEST]),
}
paths["/api/v1/source/{source_id}/replay"] = {
    "post": op("v1.source.replay", "Replay Received Requests In A Time Range", replayed, [SOURCE],
               body={"type": "object", "required": ["since"],
                     "properties": {"since": {"type": "string", "format": "date-time"},
                                    "until": {"type": "string", "format": "date-time"}}}),
}
ingest = op("inbound.receive", "Receive A Webhook",
            {"200": {"description": "accepted or duplicate", **json_body(
                {"type": "object", "properties": {"id": {"type": "string"},
                                                  "status": {"type": "string", "enum": ["accepted", "duplicate"]},
                                                  "duplicateOf": {"type": "string"}}})},
             "400": ERROR}, [SOURCE], body={"description": "Any body; kept byte for byte."})
ingest["description"] = ("Where senders post. No API token: the request must carry the source's "
                         "proof. Answered only after the request is durable.")
paths["/in/{source_id}"] = {"post": ingest}
source.setdefault("tags", []).append({"name": "Inbound", "description": "Receiving webhooks (Vestnik extension)."})

check = {"type": "object", "required": ["name", "up"], "properties": {
    "name": {"type": "string", "description": "database, relay or consumer"},
    "up": {"type": "boolean"},
    "latencyMs": {"type": "integer"},
    "detail": {"type": "string", "description": "Why it is down (never a password)."}}}
readiness = {"type": "object", "required": ["status", "role", "database"], "properties": {
    "status": {"type": "string", "enum": ["ready", "degraded", "unavailable"],
               "description": "degraded: the API accepts, but the broker is away so delivery waits."},
    "role": {"type": "string", "enum": ["all", "api", "worker"]},
    "database": check,
    "broker": {"type": "array", "items": check,
               "description": "Present when the node dispatches through RabbitMQ."}}}
paths["/api/v1/health/ready"] = {"get": {
    "operationId": "vestnik.health.ready", "summary": "Readiness", "tags": ["Health"],
    "description": ("Vestnik extension: whether this node can do its role's work now. No token. "
                    "503 when it cannot (database down; a worker without its broker)."),
    "responses": {"200": {"description": "ready or degraded", **json_body(readiness)},
                  "503": {"description": "unavailable", **json_body(readiness)}}}}

json.dump(source, open("crates/vestnik-server/src/openapi.json", "w"), indent=1, sort_keys=True)
print("wrote crates/vestnik-server/src/openapi.json")

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
        "blocked_target) and `EndpointIn.headers`. Answers 501 (code `not_implemented`) for: "
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
    "enum": ["success", "timeout", "dns", "connection", "tls", "http_status", "blocked_target"],
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
json.dump(source, open("crates/vestnik-server/src/openapi.json", "w"), indent=1, sort_keys=True)
print("wrote crates/vestnik-server/src/openapi.json")

"""The insurer's FHIR payloads, as `vestnik demo` really publishes them, validate against the FHIR
structure with the `fhir.resources` models: R5 subscription-notification Bundles, and R4
(Subscriptions Backport) history Bundles checked with the R4B models."""
import json
import time
import urllib.request

import pytest
from fhir.resources.bundle import Bundle as BundleR5
from fhir.resources.R4B.bundle import Bundle as BundleR4B

FAST = str(60 * 86400)  # 60 simulated days per real second


def get(url, token=None):
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def run_claims(demo, count):
    for _ in range(count):
        request = urllib.request.Request(f"{demo.clinic}/api/claims", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
    deadline = time.time() + 30
    while time.time() < deadline:
        claims = get(f"{demo.clinic}/api/claims")["data"]
        if all(c["status"] in ("approved", "partial", "denied") for c in claims):
            return claims
        time.sleep(0.1)
    raise AssertionError("claims were not all decided and learned")


@pytest.mark.parametrize("fmt", ["fhir-r5", "fhir-r4"])
def test_published_fhir_notifications_validate(demo_factory, fmt):
    demo = demo_factory("--payload-format", fmt, "--time-scale", FAST, "--claims-per-minute", "0", "--seed", "3")
    claims = run_claims(demo, 10)
    assert all(c["learned_via"] == "webhook" for c in claims)
    messages = get(f"{demo.gateway}/api/v1/app/clinic-7/msg?limit=250", token="demo-token")["data"]
    assert len(messages) == 20, "in review, then decided, for each claim"
    decisions = set()
    for message in messages:
        payload = message["payload"]
        if fmt == "fhir-r5":
            bundle = BundleR5.model_validate(payload)
            assert bundle.type == "subscription-notification"
            status, response = bundle.entry[0].resource, bundle.entry[1].resource
            assert status.__resource_type__ == "SubscriptionStatus"
            if response.outcome == "complete":
                decisions.add(response.decision.coding[0].code)
            else:
                assert response.decision.coding[0].code == "pending"
        else:
            bundle = BundleR4B.model_validate(payload)
            assert bundle.type == "history"
            status, response = bundle.entry[0].resource, bundle.entry[1].resource
            assert status.__resource_type__ == "Parameters"
            assert not hasattr(response, "decision") or getattr(response, "decision", None) is None
            if response.outcome == "complete":
                totals = {t.category.coding[0].code: t.amount.value for t in response.total}
                decisions.add("denied" if totals["benefit"] == 0 else
                              "approved" if totals["benefit"] == totals["submitted"] else "partial")
        assert response.__resource_type__ == "ClaimResponse"
    assert decisions <= {"approved", "partial", "denied"} and decisions, decisions

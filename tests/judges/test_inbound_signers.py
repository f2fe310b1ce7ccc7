"""The senders' own libraries sign, and Vestnik's inbound gateway must accept what they sign,
refuse a tampered copy, and hand the accepted event on byte for byte: `standardwebhooks`, `svix`
and `stripe` (its documented test helper) are the judges of our verification."""
import json
import urllib.error
import urllib.request
from datetime import datetime, timezone

import stripe
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

from conftest import TOKEN


def call(url, method="GET", body=None, headers=None, token=True):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {TOKEN}")
    if not isinstance(body, bytes) and body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def create_source(vestnik, receiver, verification, secret=None):
    body = {"name": "judge", "verification": verification,
            "destinations": [{"url": receiver.url + "/destination"}]}
    if secret:
        body["secret"] = secret
    status, source = call(f"{vestnik}/api/v1/source", "POST", body)
    assert status == 201, source
    status, key = call(f"{vestnik}/api/v1/source/{source['id']}/secret")
    assert status == 200, key
    return source, key["key"]


def deliver(vestnik, source, headers, payload):
    return call(vestnik + source["ingestPath"], "POST", payload.encode(), headers, token=False)


def check_accepted_then_tampered(vestnik, receiver, source, headers, payload):
    status, answer = deliver(vestnik, source, headers, payload)
    assert (status, answer["status"]) == (200, "accepted"), answer
    tampered = payload.replace("approved", "denied")
    status, answer = deliver(vestnik, source, headers, tampered)
    assert (status, answer["code"]) == (401, "signature_mismatch"), answer
    [(path, _, body)] = receiver.wait_for(1)
    assert path == "/destination"
    assert body == payload.encode(), "the accepted body is handed on byte for byte"


def test_standardwebhooks_signatures_are_accepted(vestnik, receiver):
    source, secret = create_source(vestnik, receiver, {"type": "standard-webhooks"})
    payload = json.dumps({"type": "claim.status_changed", "data": {"claim": "C-1", "status": "approved"}})
    now = datetime.now(tz=timezone.utc)
    headers = {
        "webhook-id": "msg_judge_std_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": StandardWebhook(secret).sign("msg_judge_std_1", now, payload),
    }
    check_accepted_then_tampered(vestnik, receiver, source, headers, payload)


def test_svix_signatures_are_accepted(vestnik, receiver):
    source, secret = create_source(vestnik, receiver, {"type": "standard-webhooks"})
    payload = json.dumps({"type": "claim.status_changed", "data": {"claim": "C-2", "status": "approved"}})
    now = datetime.now(tz=timezone.utc)
    headers = {
        "svix-id": "msg_judge_svix_1",
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": SvixWebhook(secret).sign("msg_judge_svix_1", now, payload),
    }
    check_accepted_then_tampered(vestnik, receiver, source, headers, payload)


def test_stripe_signatures_are_accepted_and_deduplicated(vestnik, receiver):
    secret = "whsec_judge_stripe_secret"
    source, _ = create_source(vestnik, receiver, {"type": "stripe"}, secret=secret)
    payload = json.dumps({"id": "evt_judge_1", "type": "invoice.paid", "data": {"status": "approved"}})
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    stripe.WebhookSignature.verify_header(payload, header, secret)  # the library agrees with itself
    headers = {"Stripe-Signature": header}
    check_accepted_then_tampered(vestnik, receiver, source, headers, payload)
    status, answer = deliver(vestnik, source, headers, payload)
    assert (status, answer["status"]) == (200, "duplicate"), "Stripe's event id deduplicates"

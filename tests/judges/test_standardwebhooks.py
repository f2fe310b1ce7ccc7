"""The official `standardwebhooks` and `svix` verifiers accept every request Vestnik delivers,
including across a secret rotation."""
import json

from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.api import ApplicationIn, EndpointIn, EndpointSecretRotateIn, MessageIn, Svix, SvixOptions
from svix.webhooks import Webhook as SvixWebhook

from conftest import TOKEN

PAYLOADS = [
    {"claimId": "c-1", "status": "approved", "amount": "1250.00"},
    {"unicode": "Пациент Иванов — оплата ✓", "emoji": "🩺"},
    {"nested": {"list": [1, 2.5, None, True, {"deep": "x"}]}, "empty": {}},
    {"escapes": "quote \" backslash \\ newline \n tab \t"},
    {"big": "x" * 50_000},
]


def test_every_delivered_request_verifies(vestnik, receiver):
    client = Svix(TOKEN, SvixOptions(server_url=vestnik))
    app = client.application.create(ApplicationIn(name="Clinic", uid="clinic"))
    endpoint = client.endpoint.create(app.id, EndpointIn(url=receiver.url + "/hook", version=1))
    old_secret = client.endpoint.get_secret(app.id, endpoint.id).key

    for payload in PAYLOADS:
        client.message.create(app.id, MessageIn(event_type="claim.status_changed", payload=payload))
    before = receiver.wait_for(len(PAYLOADS))

    client.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn())
    new_secret = client.endpoint.get_secret(app.id, endpoint.id).key
    assert new_secret != old_secret
    for payload in PAYLOADS:
        client.message.create(app.id, MessageIn(event_type="claim.status_changed", payload=payload))
    everything = receiver.wait_for(2 * len(PAYLOADS))

    for index, (_, headers, body) in enumerate(everything):
        headers = {k.lower(): v for k, v in headers.items()}
        secrets = [old_secret] if index < len(before) else [new_secret, old_secret]
        for secret in secrets:
            verified = StandardWebhook(secret).verify(body, headers)
            assert verified == json.loads(body)
            assert SvixWebhook(secret).verify(body, headers) == json.loads(body)
    delivered = [json.loads(body) for _, _, body in everything]
    assert sorted(map(json.dumps, delivered)) == sorted(map(json.dumps, PAYLOADS * 2))

"""The official Svix Python SDK drives Vestnik through a full scenario."""
import json

from svix.api import (
    ApplicationIn, EndpointIn, EndpointSecretRotateIn, EventExampleIn, EventTypeIn, MessageAttemptListOptions,
    MessageIn, Svix, SvixOptions,
)
from svix.exceptions import HttpError

from conftest import TOKEN


def test_svix_sdk_scenario(vestnik, receiver):
    client = Svix(TOKEN, SvixOptions(server_url=vestnik))

    app = client.application.get_or_create(ApplicationIn(name="Insurer → Clinic 17", uid="clinic-17"))
    again = client.application.get_or_create(ApplicationIn(name="ignored", uid="clinic-17"))
    assert again.id == app.id
    assert client.application.get("clinic-17").name == "Insurer → Clinic 17"

    client.event_type.create(EventTypeIn(name="claim.status_changed", description="A claim's status changed"))
    client.event_type.create(EventTypeIn(name="claim.note_added", description="Free-text note"))
    names = {et.name for et in client.event_type.list().data}
    assert names == {"claim.status_changed", "claim.note_added"}

    endpoint = client.endpoint.create(app.id, EndpointIn(
        url=receiver.url + "/claims", version=1, uid="claims", filter_types=["claim.status_changed"],
    ))
    assert endpoint.filter_types == ["claim.status_changed"]
    assert client.endpoint.get(app.id, "claims").id == endpoint.id

    wanted = client.message.create(app.id, MessageIn(
        event_type="claim.status_changed", event_id="claim-1-v1", payload={"claimId": "1", "version": 1},
    ))
    client.message.create(app.id, MessageIn(event_type="claim.note_added", payload={"note": "filtered out"}))
    receiver.wait_for(1)

    try:
        client.message.create(app.id, MessageIn(event_type="claim.status_changed", event_id="claim-1-v1", payload={}))
        raise AssertionError("a duplicate eventId must be refused")
    except HttpError as err:
        assert err.status_code == 409

    assert client.message.get(app.id, "claim-1-v1").id == wanted.id
    attempts = client.message_attempt.list_by_msg(app.id, wanted.id, MessageAttemptListOptions())
    assert len(attempts.data) == 1
    assert attempts.data[0].response_status_code == 200
    assert attempts.data[0].endpoint_id == endpoint.id

    client.message_attempt.resend(app.id, wanted.id, endpoint.id)
    receiver.wait_for(2)
    paths = [path for path, _, _ in receiver.requests]
    assert paths == ["/claims", "/claims"], "the filtered event type must not be delivered"

    old = client.endpoint.get_secret(app.id, endpoint.id).key
    client.endpoint.rotate_secret(app.id, endpoint.id, EndpointSecretRotateIn())
    assert client.endpoint.get_secret(app.id, endpoint.id).key != old

    destinations = client.message_attempt.list_attempted_destinations(app.id, wanted.id)
    assert [d.id for d in destinations.data] == [endpoint.id]
    stats_attempts = client.message_attempt.list_by_endpoint(app.id, endpoint.id, MessageAttemptListOptions())
    assert len(stats_attempts.data) == 2

    ping = client.endpoint.send_example(app.id, endpoint.id, EventExampleIn(event_type="svix.ping"))
    assert ping.event_type == "svix.ping"
    receiver.wait_for(3)
    path, _, body = receiver.requests[2]
    assert (path, json.loads(body)) == ("/claims", {"success": True})

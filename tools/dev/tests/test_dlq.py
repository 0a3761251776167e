"""`switchboard dlq` lists dead letters without their payload and replays them as they were."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker

from switchboard_contracts import encode, make_event
from switchboard_contracts.calls import CallReceived
from switchboard_contracts.notes import NoteCreated
from switchboard_contracts.samples import sample_payload
from switchboard_dev.cli import main
from switchboard_dev.dead_letters import DeadLetter, read_dead_letters
from switchboard_dev.dlq import SelectionError, describe, select
from switchboard_dev.kafka_access import KafkaAccess
from switchboard_platform.consumer import DeadLetters, RawRecord
from switchboard_platform.testing.kafka import raw_record
from switchboard_platform.testing.pytest_plugin import ServerEndpoints

CALLER = "Erika Mustermann"
CONCERN = "Bittet um Rückruf wegen der Scheidungsakte"


@dataclass(frozen=True)
class Planted:
    """A dead letter put on `<topic>.dlq` the way a service's consumer does it."""

    tenant: str
    original: RawRecord
    letter: DeadLetter


def _original(topic: str, tenant: str, partition: int = 3, offset: int = 4711) -> RawRecord:
    payload_type = CallReceived if topic == "call.received" else NoteCreated
    caller = {"name": CALLER, "phone": "+4915112345678"}
    payload = sample_payload(payload_type, tenant_id=tenant, caller=caller, concern=CONCERN)
    record = raw_record(
        encode(make_event(payload, tenant_id=tenant, source="/test")),
        partition=partition,
        offset=offset,
    )
    traceparent = ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    return dataclasses.replace(record, headers=(*record.headers, traceparent))


async def _plant(
    servers: ServerEndpoints, *originals: RawRecord, kind: str = "schema_violation"
) -> None:
    broker = KafkaBroker(servers.kafka_bootstrap_servers, request_timeout_ms=5000)
    await broker.connect()
    try:
        for original in originals:
            await DeadLetters(broker, "notes").send(original, kind, "caller.phone: invalid number")
    finally:
        await broker.stop()


@pytest.fixture
async def planted(servers: ServerEndpoints) -> Planted:
    """One dead letter of `call.received`, for a tenant of this test alone."""
    tenant = f"dlq-{uuid.uuid4().hex[:10]}"
    original = _original("call.received", tenant)
    await _plant(servers, original)
    bootstrap = servers.kafka_bootstrap_servers
    [letter] = (await read_dead_letters(bootstrap, ["call.received"], tenant=tenant)).letters
    return Planted(tenant, original, letter)


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `switchboard ...` in-process (its own event loop, in a thread); code, out, err."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def _records_on(servers: ServerEndpoints, topic: str, key: str) -> list[DeadLetter]:
    """Every record of `topic` with `key`, read to the end offsets of now."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[DeadLetter] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(
                    DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                    for r in records
                    if r.key == key.encode()
                )
    finally:
        await consumer.stop()
    return found


async def test_list_names_origin_error_and_event_but_hides_the_payload(
    planted: Planted, servers: ServerEndpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrap = servers.kafka_bootstrap_servers
    argv = ("dlq", "list", "--topic", "call.received", "--tenant", planted.tenant)
    code, out, err = await _cli(capsys, *argv, "--bootstrap", bootstrap)
    assert code == 0, err
    assert f"{planted.letter.position}  from call.received/3/4711" in out
    assert f"key {planted.tenant}  service notes" in out
    assert "schema_violation: caller.phone: invalid number" in out
    assert f"ce_id={planted.letter.header('ce_id')}" in out
    assert "ce_type=org.switchboard.call.received.v1" in out
    assert CALLER not in out
    assert CONCERN not in out
    assert "+4915112345678" not in out
    assert "1 of 1 dead letter shown" in err


async def test_json_listing_carries_the_payload_only_when_asked(
    planted: Planted,
    servers: ServerEndpoints,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", servers.kafka_bootstrap_servers)
    argv = ("dlq", "list", "--json", "--tenant", planted.tenant)
    _, hidden, _ = await _cli(capsys, *argv)
    _, shown, _ = await _cli(capsys, *argv, "--show-payload")
    [listed] = [json.loads(line) for line in hidden.splitlines()]
    assert listed["original_topic"] == "call.received"
    assert (listed["original_partition"], listed["original_offset"]) == (3, 4711)
    assert listed["error_kind"] == "schema_violation"
    assert listed["failed_at"]
    assert "payload" not in listed
    assert CALLER not in hidden
    [with_payload] = [json.loads(line) for line in shown.splitlines()]
    assert planted.original.value is not None
    assert with_payload["payload"] == planted.original.value.decode()


async def test_list_without_topic_reads_every_dead_letter_topic(
    servers: ServerEndpoints,
) -> None:
    tenant = f"dlq-{uuid.uuid4().hex[:10]}"
    await _plant(servers, _original("call.received", tenant), _original("note.created", tenant))
    scan = await read_dead_letters(
        servers.kafka_bootstrap_servers,
        ["call.received", "note.created"],
        tenant=tenant,
    )
    assert [d.topic for d in scan.letters] == ["call.received.dlq", "note.created.dlq"]
    assert scan.missing_topics == []


async def test_replay_puts_the_original_bytes_and_headers_back_on_the_topic(
    planted: Planted, servers: ServerEndpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    letter = planted.letter
    ref = f"{letter.partition}/{letter.offset}"
    argv = ("dlq", "replay", "--topic", "call.received", "--offset", ref)
    bootstrap = servers.kafka_bootstrap_servers
    code, out, err = await _cli(capsys, *argv, "--tenant", planted.tenant, "--bootstrap", bootstrap)
    assert code == 0, err
    assert out.startswith(f"replayed {letter.position} -> call.received/")
    [replayed] = await _records_on(servers, "call.received", planted.tenant)
    assert replayed.key == planted.original.key
    assert replayed.value == planted.original.value
    headers = dict(replayed.headers)
    for name, value in planted.original.headers:
        assert headers[name] == value
    assert headers["dlq_replayed_from"] == letter.position.encode()
    assert [n for n in headers if n.startswith("dlq_")] == ["dlq_replayed_from"]


async def test_dry_run_replays_nothing(
    planted: Planted, servers: ServerEndpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("dlq", "replay", "--topic", "call.received", "--all", "--dry-run")
    bootstrap = servers.kafka_bootstrap_servers
    code, out, _ = await _cli(capsys, *argv, "--tenant", planted.tenant, "--bootstrap", bootstrap)
    assert code == 0
    assert out.startswith(f"would replay {planted.letter.position} -> call.received")
    assert await _records_on(servers, "call.received", planted.tenant) == []


async def test_replay_of_an_offset_that_holds_no_dead_letter_is_refused(
    planted: Planted, servers: ServerEndpoints, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("dlq", "replay", "--topic", "call.received", "--offset", "999999999")
    bootstrap = servers.kafka_bootstrap_servers
    code, _, err = await _cli(capsys, *argv, "--tenant", planted.tenant, "--bootstrap", bootstrap)
    assert code == 2
    assert "no dead letter at offset 999999999" in err


def _letter(partition: int, offset: int, value: bytes = b"{}") -> DeadLetter:
    return DeadLetter("call.received.dlq", partition, offset, b"acme", value, ())


def test_an_offset_in_several_partitions_must_name_its_partition() -> None:
    letters = [_letter(0, 7), _letter(2, 7), _letter(2, 8)]
    assert select(letters, ["2/7", "8", "0/7"]) == [letters[0], letters[1], letters[2]]
    with pytest.raises(SelectionError, match=r"several partitions \(0/7, 2/7\)"):
        select(letters, ["7"])


def test_a_binary_payload_is_shown_as_base64() -> None:
    info = describe(_letter(0, 1, b"\x00\xff"), show_payload=True)
    assert info["payload_base64"] == "AP8="
    assert "payload" not in info


def test_sasl_settings_reach_the_kafka_clients() -> None:
    access = KafkaAccess(security_protocol="SASL_SSL", sasl_username="u", sasl_password="p")
    options = access.client_options()
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "p")
    assert options["ssl_context"] is not None


def test_sasl_without_credentials_is_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    assert main(["dlq", "list", "--bootstrap", "127.0.0.1:1"]) == 2
    assert "SASL needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD" in capsys.readouterr().err


def test_console_script_lists_dead_letters(planted: Planted, servers: ServerEndpoints) -> None:
    script = Path(sys.executable).with_name("switchboard")
    result = subprocess.run(
        [str(script), "dlq", "list", "--topic", "call.received", "--tenant", planted.tenant],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap_servers},
        timeout=60,
    )
    assert planted.letter.position in result.stdout
    assert CALLER not in result.stdout

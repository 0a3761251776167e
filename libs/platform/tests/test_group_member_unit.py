"""A replica's group member id kept in its state dir, and a restart freeing the dead one's place.

Without a broker: the record's file handling, and what `TopicConsumer` does with it (remove
the recorded member before joining, record after an assignment, forget after leaving).
The real broker's side is `tests/crash/test_restart_frees_group_place.py`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from switchboard_platform import topic_consumer
from switchboard_platform.group_member import MemberRecord, current_member_id
from switchboard_platform.settings import ServiceSettings
from switchboard_platform.topic_consumer import TopicConsumer

GROUP = "notes.call.received"


@pytest.fixture
def dead_member(tmp_path: Path) -> MemberRecord:
    """The record a crashed process of this replica left in `tmp_path`."""
    record = MemberRecord(tmp_path, GROUP)
    record.write("dead-member")
    return record


class _Pipeline:
    service = "unit"
    topic = "call.received"


def _consumer(**settings: Any) -> TopicConsumer:
    config = ServiceSettings(environment="test", **settings)
    pipeline: Any = _Pipeline()
    return TopicConsumer(pipeline, group_id=GROUP, settings=config, client_id="u")


def test_a_member_id_is_recorded_read_back_and_forgotten(tmp_path: Path) -> None:
    record = MemberRecord(tmp_path / "state", GROUP)
    assert record.read() is None  # nothing yet, not even the directory
    record.write("member-1")
    record.write("member-2")  # a later assignment under a new id replaces the old one
    assert record.read() == "member-2"
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == [
        "kafka-member.notes.call.received"
    ]  # no scratch file left behind
    record.clear()
    record.clear()  # twice is fine
    assert record.read() is None


def test_each_group_has_its_own_file_and_odd_names_stay_inside_the_dir(tmp_path: Path) -> None:
    one = MemberRecord(tmp_path, GROUP)
    other = MemberRecord(tmp_path, "../notes/dsr requested")
    one.write("a")
    other.write("b")
    assert (one.read(), other.read()) == ("a", "b")
    assert other.path.parent == tmp_path


def test_an_unwritable_state_dir_costs_the_fast_restart_not_the_service(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    record = MemberRecord(blocker / "state", "g")
    record.write("member-1")  # logged, not raised
    assert record.read() is None


async def test_a_restart_removes_the_recorded_member_before_joining(
    tmp_path: Path, dead_member: MemberRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    removed: list[tuple[str, str]] = []

    async def remove(group_id: str, member_id: str, **_: Any) -> None:
        removed.append((group_id, member_id))

    monkeypatch.setattr(topic_consumer, "remove_member", remove)
    consumer = _consumer(state_dir=tmp_path)
    await consumer._remove_predecessor()
    assert removed == [(GROUP, "dead-member")]
    assert dead_member.read() is None
    await consumer._remove_predecessor()  # a retried join does not remove it again
    assert len(removed) == 1


async def test_a_broker_that_cannot_be_reached_keeps_the_record_for_the_next_attempt(
    tmp_path: Path, dead_member: MemberRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_: Any, **__: Any) -> None:
        raise KafkaConnectionError("no broker")

    monkeypatch.setattr(topic_consumer, "remove_member", unreachable)
    await _consumer(state_dir=tmp_path)._remove_predecessor()
    assert dead_member.read() == "dead-member"


async def test_without_a_state_dir_or_with_static_membership_nothing_is_removed(
    tmp_path: Path, dead_member: MemberRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def remove(*_: Any, **__: Any) -> None:
        raise AssertionError("must not be called")

    monkeypatch.setattr(topic_consumer, "remove_member", remove)
    await _consumer()._remove_predecessor()
    static = _consumer(state_dir=tmp_path, kafka_group_instance_id="notes-0")
    await static._remove_predecessor()  # the broker replaces a static member itself
    static._consumer = SimpleNamespace(_coordinator=SimpleNamespace(member_id="m"))  # type: ignore[assignment]
    static.remember_member()
    assert dead_member.read() == "dead-member"


def test_an_assignment_records_the_member_id_the_coordinator_gave(tmp_path: Path) -> None:
    consumer = _consumer(state_dir=tmp_path)
    consumer._consumer = SimpleNamespace(_coordinator=SimpleNamespace(member_id="member-7"))  # type: ignore[assignment]
    consumer.remember_member()
    assert MemberRecord(tmp_path, GROUP).read() == "member-7"


def test_the_member_id_is_read_from_aiokafkas_coordinator_or_not_at_all() -> None:
    assert current_member_id(SimpleNamespace(_coordinator=SimpleNamespace(member_id="m"))) == "m"
    assert current_member_id(SimpleNamespace(_coordinator=SimpleNamespace(member_id=""))) is None
    assert current_member_id(SimpleNamespace()) is None

"""`switchboard dlq`: list the dead letters of the event topics and replay chosen ones."""

# Dead letters hold personal data (a call's caller and concern): the listing shows where a
# letter came from and why it failed, and its payload only when asked with `--show-payload`.

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from switchboard_contracts.topics import EVENT_TOPICS
from switchboard_dev.command import SubParsers
from switchboard_dev.dead_letters import DeadLetter, read_dead_letters, replay
from switchboard_dev.kafka_access import KafkaAccess


class SelectionError(ValueError):
    """The offsets given do not name exactly one dead letter each."""


def select(letters: Sequence[DeadLetter], refs: Sequence[str]) -> list[DeadLetter]:
    """The letters named by `OFFSET` or `PARTITION/OFFSET` references, in topic order."""
    chosen: dict[tuple[int, int], DeadLetter] = {}
    for ref in refs:
        partition, _, offset = ref.rpartition("/")
        matches = [
            d for d in letters if str(d.offset) == offset and partition in ("", str(d.partition))
        ]
        if not matches:
            raise SelectionError(f"no dead letter at offset {ref}")
        if len(matches) > 1:
            where = ", ".join(f"{d.partition}/{d.offset}" for d in matches)
            raise SelectionError(f"offset {ref} is in several partitions ({where}): name one")
        chosen[(matches[0].partition, matches[0].offset)] = matches[0]
    return [chosen[k] for k in sorted(chosen)]


def describe(letter: DeadLetter, *, show_payload: bool = False) -> dict[str, Any]:
    """What an operator sees of a dead letter; the payload only with `show_payload`."""
    header = letter.header
    original_partition, original_offset = (
        header("dlq_original_partition"),
        header("dlq_original_offset"),
    )
    info: dict[str, Any] = {
        "dlq_topic": letter.topic,
        "dlq_partition": letter.partition,
        "dlq_offset": letter.offset,
        "original_topic": header("dlq_original_topic"),
        "original_partition": _int(original_partition),
        "original_offset": _int(original_offset),
        "key": None if letter.key is None else letter.key.decode(errors="replace"),
        "service": header("dlq_service"),
        "error_kind": header("dlq_error_kind"),
        "reason": header("dlq_error_reason"),
        "failed_at": header("dlq_failed_at"),
        "ce_id": header("ce_id"),
        "ce_type": header("ce_type"),
        "replayed_from": header("dlq_replayed_from"),
    }
    if show_payload:
        try:
            info["payload"] = (letter.value or b"").decode()
        except UnicodeDecodeError:
            info["payload_base64"] = base64.b64encode(letter.value or b"").decode()
    return info


def format_text(info: dict[str, Any]) -> str:
    """A dead letter's description as a few indented lines."""
    shown = {k: "-" if v is None else v for k, v in info.items()}
    lines = [
        f"{info['dlq_topic']}/{info['dlq_partition']}/{info['dlq_offset']}  from "
        f"{shown['original_topic']}/{shown['original_partition']}/{shown['original_offset']}"
        f"  key {shown['key']}  service {shown['service']}",
        f"  error   {shown['error_kind']}: {shown['reason']}",
        f"  failed  {shown['failed_at']}",
        f"  event   ce_id={shown['ce_id']} ce_type={shown['ce_type']}",
    ]
    if info["replayed_from"]:
        lines.append(f"  replay  of {info['replayed_from']}")
    for field in ("payload", "payload_base64"):
        if field in info:
            lines.append(f"  {field}  {info[field]}")
    return "\n".join(lines)


def add_parser(subparsers: SubParsers, name: str) -> argparse.ArgumentParser:
    """Add `dlq` with its `list` and `replay` actions."""
    parser = subparsers.add_parser(
        name,
        help="list and replay dead letters",
        description="Inspect and replay the <topic>.dlq topics. Kafka is reached as the "
        "services reach it: KAFKA_BOOTSTRAP_SERVERS, KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, "
        "KAFKA_SSL_CAFILE.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="print the dead letters, oldest first")
    listing.add_argument(
        "--topic", choices=EVENT_TOPICS, metavar="TOPIC", help="an event topic (default: all)"
    )
    listing.add_argument("--limit", type=_positive, default=50, help="at most this many")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument(
        "--show-payload", action="store_true", help="also print the payload (personal data!)"
    )
    again = actions.add_parser(
        "replay",
        help="publish dead letters again to their original topic",
        description="Consumers are idempotent: a fixed message is processed once, a still "
        "broken one is dead-lettered again.",
    )
    again.add_argument(
        "--topic", choices=EVENT_TOPICS, metavar="TOPIC", required=True, help="the event topic"
    )
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--offset",
        dest="offsets",
        nargs="+",
        action="extend",
        metavar="[PARTITION/]OFFSET",
        help="offsets in the .dlq topic, as `dlq list` shows them",
    )
    which.add_argument("--all", action="store_true", help="every dead letter of the topic")
    again.add_argument("--dry-run", action="store_true", help="say what would be replayed")
    for sub in (listing, again):
        sub.add_argument("--tenant", help="only dead letters with this key (the tenant id)")
        sub.add_argument("--bootstrap", help="Kafka bootstrap servers (default: from env)")
    return parser


def run(args: argparse.Namespace) -> int:
    """List or replay; 1 when Kafka cannot be read, 2 for a selection that names nothing."""
    try:
        access = KafkaAccess()
        options = access.client_options()
    except (ValidationError, ValueError) as exc:
        return _fail(f"bad Kafka settings: {exc}", 2)
    bootstrap = args.bootstrap or access.bootstrap_servers
    try:
        return asyncio.run(_run(args, bootstrap, options))
    except SelectionError as exc:
        return _fail(str(exc), 2)
    except (KafkaError, OSError, TimeoutError) as exc:
        name = type(exc).__name__
        return _fail(f"Kafka at {bootstrap}: {exc if name in str(exc) else f'{name}: {exc}'}", 1)


async def _run(args: argparse.Namespace, bootstrap: str, options: dict[str, Any]) -> int:
    topics = [args.topic] if args.topic else list(EVENT_TOPICS)
    scan = await read_dead_letters(bootstrap, topics, tenant=args.tenant, **options)
    if scan.missing_topics:
        _note(f"not on the broker: {', '.join(scan.missing_topics)}")
    if args.action == "list":
        shown = scan.letters[: args.limit]
        for letter in shown:
            info = describe(letter, show_payload=args.show_payload)
            print(json.dumps(info, ensure_ascii=False) if args.json else format_text(info))
        _note(f"{len(shown)} of {_letters(len(scan.letters))} shown")
        return 0
    chosen = scan.letters if args.all else select(scan.letters, args.offsets)
    if args.dry_run:
        for letter in chosen:
            print(f"would replay {letter.position} -> {letter.original_topic}{_event(letter)}")
        _note(f"dry run: {_letters(len(chosen))} would be replayed")
        return 0
    for done in await replay(bootstrap, chosen, **options):
        target = f"{done.topic}/{done.partition}/{done.offset}"
        print(f"replayed {done.letter.position} -> {target}{_event(done.letter)}")
    _note(f"{_letters(len(chosen))} replayed")
    return 0


def _event(letter: DeadLetter) -> str:
    ce_id = letter.header("ce_id")
    return "" if ce_id is None else f"  ce_id={ce_id}"


def _letters(count: int) -> str:
    return f"{count} dead letter{'' if count == 1 else 's'}"


def _int(text: str | None) -> int | str | None:
    return int(text) if text is not None and text.isdigit() else text


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _note(message: str) -> None:
    print(f"switchboard dlq: {message}", file=sys.stderr)


def _fail(message: str, code: int) -> int:
    _note(message)
    return code

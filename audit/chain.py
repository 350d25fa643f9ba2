"""The audit chain's hash and its verification (pure): recompute every entry's hash from its fields, check
each entry links to the one before it, and say which entry was edited, deleted or moved.

The hash is the one `trading_runtime.storage.audit_schema` documents and the database computes on insert;
it is recomputed here from the stored fields, so a row changed behind the triggers' back no longer matches.
What a chain alone cannot show is its own end cut off (the newest entries deleted): an anchor — a
(seq, hash) pair kept outside the database, e.g. in the compliance report — closes that gap."""

from __future__ import annotations

import datetime
import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

GENESIS_HASH = "0" * 64
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Entry:
    """One stored entry, as read back: `detail_text` is the database's own text of the jsonb detail."""

    seq: int
    recorded_at: datetime.datetime
    occurred_at: datetime.datetime
    actor: str
    kind: str
    subject: str
    detail_text: str
    source_key: str | None
    prev_hash: str
    hash: str


def micros(moment: datetime.datetime) -> int:
    """Integer microseconds since the epoch (exact: no float on the way)."""
    return (moment - _EPOCH) // datetime.timedelta(microseconds=1)


def _field(value: str) -> bytes:
    data = value.encode()
    return f"{len(data)}:".encode() + data


def entry_hash(entry: Entry) -> str:
    """The hash the entry should carry, from its fields and its predecessor's hash."""
    digest = hashlib.sha256()
    for value in (entry.prev_hash, str(entry.seq), str(micros(entry.recorded_at)), str(micros(entry.occurred_at)),
                  entry.actor, entry.kind, entry.subject, entry.detail_text, entry.source_key or ""):
        digest.update(_field(value))
    return digest.hexdigest()


class Problem(enum.StrEnum):
    EDITED = "edited"
    DELETED = "deleted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"


@dataclass(frozen=True, order=True)
class Finding:
    seq: int
    problem: Problem
    message: str


@dataclass(frozen=True)
class Anchor:
    """A chain position remembered outside the database: entry `seq` had hash `hash`."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """`SEQ:HASH` (as `opsctl audit head` prints it)."""
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"an anchor is SEQ:HASH (64 hex digits), got {text!r}")
        return cls(int(seq), digest)

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass
class Verification:
    entries: int = 0
    head: Anchor | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        if self.ok:
            head = f", head {self.head}" if self.head else ""
            return f"audit chain intact: {self.entries} entries{head}"
        problems = sorted({f.problem.value for f in self.findings})
        return f"audit chain BROKEN: {len(self.findings)} finding(s) ({', '.join(problems)}) in {self.entries} entries"


def verify(entries: Iterable[Entry], anchors: Iterable[Anchor] = ()) -> Verification:
    """Walk the entries in seq order. Each finding names the entry and what happened to it: its content no
    longer matches its hash (edited), seqs are missing (deleted), it links to an entry other than the one
    before it (reordered), or an anchored entry is gone or different (truncated / edited)."""
    result = Verification()
    wanted = {a.seq: a for a in anchors}
    previous: Entry | None = None
    seen: dict[str, int] = {}  # hash -> seq of every entry walked
    dangling: dict[str, int] = {}  # prev_hash that matched no predecessor -> seq of the entry carrying it
    moved: set[int] = set()
    for entry in entries:
        result.entries += 1
        expected_seq = previous.seq + 1 if previous else 1
        expected_prev = previous.hash if previous else GENESIS_HASH
        gap = entry.seq > expected_seq
        if gap:
            missing = f"{expected_seq}" if entry.seq == expected_seq + 1 else f"{expected_seq}..{entry.seq - 1}"
            result.findings.append(Finding(expected_seq, Problem.DELETED, f"entries {missing} are missing"))
        if entry.hash in dangling:
            moved.add(dangling[entry.hash])
            result.findings.append(Finding(dangling.pop(entry.hash), Problem.REORDERED,
                                           f"entry links to entry {entry.seq}, which comes after it"))
        content_ok = entry_hash(entry) == entry.hash
        if entry.prev_hash != expected_prev and not gap:
            if entry.prev_hash in seen:
                moved.add(entry.seq)
                result.findings.append(Finding(entry.seq, Problem.REORDERED, f"entry links to entry "
                                               f"{seen[entry.prev_hash]}, not to the entry before it"))
            elif content_ok and previous is not None:
                result.findings.append(Finding(previous.seq, Problem.EDITED, f"entry {entry.seq} no longer links "
                                               "to it: it was changed and re-hashed"))
            else:
                dangling[entry.prev_hash] = entry.seq
        if not content_ok and entry.seq not in moved and entry.prev_hash not in dangling:
            result.findings.append(Finding(entry.seq, Problem.EDITED, "content does not match its hash"))
        anchor = wanted.pop(entry.seq, None)
        if anchor is not None and anchor.hash != entry.hash:
            result.findings.append(Finding(entry.seq, Problem.EDITED, f"anchored hash {anchor.hash[:12]}… is now "
                                           f"{entry.hash[:12]}…"))
        seen[entry.hash] = entry.seq
        previous = entry
    for prev_hash, seq in dangling.items():
        result.findings.append(Finding(seq, Problem.EDITED, f"links to no entry of the chain ({prev_hash[:12]}…)"))
    last = previous.seq if previous else 0
    for anchor in wanted.values():
        result.findings.append(Finding(anchor.seq, Problem.TRUNCATED, f"anchored entry {anchor.seq} is gone: the "
                                       f"log ends at {last}"))
    result.head = Anchor(previous.seq, previous.hash) if previous else None
    result.findings.sort()
    return result

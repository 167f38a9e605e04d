"""Ingest files into the catalog: parse, group duplicates across files, merge, upsert idempotently."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..embed.hybrid import item_text, text_hash
from ..models import MediaItem, MediaRecord, Reject
from ..store.base import ItemWrite, SourceRow
from ..store.lexical import open_lexical_index
from ..store.sql import SqlCatalogStore
from .formats import detect_format, read_records
from .merge import combine_data, differs, merge_sources, record_data

KEYS = ("tmdb_id", "imdb_id", "movielens_id")
WRITE_BATCH = 500
MAX_REJECTS_LISTED = 200

Progress = Callable[[str, int, int], None]


@dataclass
class FileReport:
    path: str
    format: str
    rows: int = 0
    parsed: int = 0
    rejected: int = 0


@dataclass
class IngestReport:
    """What an ingest did: per-file counts, item counts, and every reject's reason."""

    files: list[FileReport] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # id-only rows (links, keywords) with no catalog item to attach to
    rejected: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    changed_ids: list[int] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["accepted"] = self.accepted
        out.pop("changed_ids")
        return out

    def add_reject(self, reject: Reject) -> None:
        self.rejected += 1
        reason = reject.reason.split(":")[0].split("'")[0].strip()
        self.reject_reasons[reason] = self.reject_reasons.get(reason, 0) + 1
        if len(self.rejects) < MAX_REJECTS_LISTED:
            self.rejects.append(reject)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _key_of(record: MediaRecord) -> list[tuple[str, Any]]:
    return [(k, getattr(record, k)) for k in KEYS if getattr(record, k) is not None]


def parse_files(paths: Sequence[Path], report: IngestReport) -> list[tuple[MediaRecord, str]]:
    """Read every file; rejects go to the report, good records come back with their origin."""
    records: list[tuple[MediaRecord, str]] = []
    for path in paths:
        fmt = detect_format(path)
        fr = FileReport(str(path), fmt)
        for rec in read_records(path, fmt):
            fr.rows += 1
            if isinstance(rec, Reject):
                fr.rejected += 1
                report.add_reject(rec)
            else:
                fr.parsed += 1
                records.append((rec, path.name))
        report.files.append(fr)
    return records


def _group(records: list[tuple[MediaRecord, str]], existing: dict[tuple[str, Any], int]) -> list[list[int]]:
    """Group record indices that describe the same title: shared external ids or the same stored item.

    Two groups are never joined when they carry different TMDB ids (bad links in the data).
    """
    n = len(records)
    uf = _UnionFind(n)
    tmdb_of: dict[int, int | None] = {i: records[i][0].tmdb_id for i in range(n)}
    owner: dict[tuple[str, Any], int] = {}

    def join(a: int, b: int) -> None:
        ra, rb = uf.find(a), uf.find(b)
        ta, tb = tmdb_of[ra], tmdb_of[rb]
        if ra == rb or (ta is not None and tb is not None and ta != tb):
            return
        uf.union(ra, rb)
        tmdb_of[uf.find(ra)] = ta if ta is not None else tb

    for key_name in KEYS:  # tmdb first, so the strongest key groups before weaker ones can chain
        for i, (rec, _origin) in enumerate(records):
            value = getattr(rec, key_name)
            if value is None:
                continue
            for key in ((key_name, value), ("item", existing.get((key_name, value)))):
                if key[1] is None:
                    continue
                if key in owner:
                    join(owner[key], i)
                else:
                    owner[key] = i
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    return list(groups.values())


def _stored_fields(item: MediaItem) -> dict[str, Any]:
    return item.to_dict()


def ingest_files(
    store: SqlCatalogStore, paths: Sequence[Path], *, model_name: str, progress: Progress | None = None
) -> IngestReport:
    """Ingest catalog files into the store of record. Each batch of items commits before it is counted."""
    report = IngestReport()
    records = parse_files(paths, report)
    existing: dict[tuple[str, Any], int] = {}
    for key in KEYS:
        found = store.find_ids(key, [getattr(r, key) for r, _ in records])
        existing.update({(key, v): i for v, i in found.items()})
    n_parsed = len(records)
    orphan_ids: dict[int, int] = {}  # record index -> orphan row id, for rows waiting in the store
    seen_orphans: set[int] = set()
    reread = {(r.source, o) for r, o in records}
    for key in KEYS:
        for orphan in store.find_orphans(key, [getattr(r, key) for r, _ in records[:n_parsed]]):
            if orphan.row_id in seen_orphans:
                continue
            seen_orphans.add(orphan.row_id)
            if (orphan.source, orphan.origin) in reread:
                continue  # this run re-reads that file: its fresh rows replace the stored ones
            orphan_ids[len(records)] = orphan.row_id
            records.append((MediaRecord(source=orphan.source, **orphan.data), orphan.origin))
    groups = _group(records, existing)
    touched = sorted({i for i in existing.values()})
    stored_items = store.get_items(touched)
    stored_sources = store.load_sources(touched)
    writes: list[ItemWrite] = []
    orphans: list[SourceRow] = []
    total = len(groups)
    for n_done, group in enumerate(groups, 1):
        skipped_before = report.skipped
        write = _plan_group(
            [records[i] for i in group], existing, stored_items, stored_sources, report, model_name
        )
        if write is not None:
            write.consumed_orphans = [orphan_ids[i] for i in group if i in orphan_ids]
            writes.append(write)
        elif report.skipped > skipped_before:
            report.skipped -= sum(1 for i in group if i in orphan_ids)
            orphans += [
                SourceRow(records[i][0].source, records[i][1], record_data(records[i][0])) for i in group
            ]
        if len(writes) >= WRITE_BATCH:
            report.changed_ids.extend(store.write_items(writes))
            writes = []
        if progress and (n_done % 200 == 0 or n_done == total):
            progress("merge", n_done, total)
    if writes:
        report.changed_ids.extend(store.write_items(writes))
    store.replace_orphans(sorted(reread), orphans)
    if report.changed_ids:  # one full-text segment again: every new query reads it (lexical.optimize)
        open_lexical_index(store.db).optimize()
    return report


def _plan_group(
    group: list[tuple[MediaRecord, str]],
    existing: dict[tuple[str, Any], int],
    stored_items: dict[int, MediaItem],
    stored_sources: dict[int, list[SourceRow]],
    report: IngestReport,
    model_name: str,
) -> ItemWrite | None:
    if all(rec.title is None for rec, _ in group) and not any(
        existing.get(key) is not None for rec, _ in group for key in _key_of(rec)
    ):
        report.skipped += len(group)  # id-only rows and no item to attach them to (yet)
        return None
    matched: list[int] = []
    for rec, _ in group:
        for key in _key_of(rec):
            item_id = existing.get(key)
            if item_id is not None and item_id not in matched:
                matched.append(item_id)
    stored = {i: stored_items[i] for i in matched}
    primary = min(matched) if matched else None
    # Several stored items now known to be one title: keep the oldest id, absorb the others.
    absorb = [i for i in matched if i != primary]
    new_rows: dict[tuple[str, str], dict[str, Any]] = {}
    for rec, origin in group:
        slot = (rec.source, origin)
        data = record_data(rec)
        new_rows[slot] = combine_data(new_rows[slot], data) if slot in new_rows else data
    old_rows = {i: stored_sources.get(i, []) for i in matched}
    combined = [SourceRow(s, o, d) for (s, o), d in new_rows.items()]
    for item_id in matched:
        combined += [r for r in old_rows.get(item_id, []) if (r.source, r.origin) not in new_rows]
    merged = merge_sources(combined)
    if merged is None:
        report.skipped += len(group)
        return None
    merged["content_hash"] = text_hash(model_name, item_text(MediaItem(id=0, **_item_args(merged))))
    current = stored.get(primary) if primary is not None else None
    old_sources = {(r.source, r.origin): r.data for item_id in matched for r in old_rows.get(item_id, [])}
    sources_changed = any(old_sources.get(slot) != data for slot, data in new_rows.items())
    if current is not None and not absorb and not differs(merged, _stored_fields(current)):
        report.unchanged += 1
        if not sources_changed:
            return None
    elif current is None:
        report.inserted += 1
    else:
        report.updated += 1
    for item_id in absorb:  # keys move to the surviving item
        for key_name in KEYS:
            value = getattr(stored[item_id], key_name)
            if value is not None and primary is not None:
                existing[(key_name, value)] = primary
    return ItemWrite(primary, merged, combined, absorb)


def _item_args(merged: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in merged.items() if k in MediaItem.__dataclass_fields__ and k not in ("id",)}


def reason_summary(report: IngestReport) -> list[tuple[str, int]]:
    return Counter(report.reject_reasons).most_common()

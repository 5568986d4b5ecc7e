"""Checking an export archive offline: every entry against the manifest, and its signature.

Pure: a ZIP file and a public key in, a list of findings out (no database, no network).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from web.recordings.export import MANIFEST_FIELDS, MANIFEST_NAME, SIGNATURE_NAME

_READ = 1024 * 1024


class PublicKeyError(ValueError):
    """The public key given cannot be read."""


@dataclass(frozen=True)
class Finding:
    """One failed check: which entry (or the archive), which check, and what was seen."""

    entry: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.entry}: {self.check}: {self.detail}"


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`verify`: how many recordings were checked and what failed."""

    recordings: int
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


def load_public_key(value: str) -> Ed25519PublicKey:
    """A public key from a PEM file or text, or the raw 32-byte key in base64 (text or file)."""
    text = value.strip()
    path = Path(text)
    try:
        if len(text) < 4096 and path.is_file():
            text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError as exc:
        raise PublicKeyError(f"cannot read the public key file {value!r}: {exc.strerror}") from None
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError:
            raise PublicKeyError("the PEM public key cannot be read") from None
        if not isinstance(key, Ed25519PublicKey):
            raise PublicKeyError("the PEM public key is not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PublicKeyError(
            "the public key must be a PEM file, or the base64 key from GET /api/v1/org/export-key"
        ) from None
    if len(raw) != 32:
        raise PublicKeyError(f"an Ed25519 public key is 32 bytes; this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _entry_sha256(zf: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with zf.open(name) as fh:
        while chunk := fh.read(_READ):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_manifest(doc: Any) -> tuple[list[dict[str, Any]], list[Finding]]:
    if not isinstance(doc, list):
        return [], [Finding(MANIFEST_NAME, "format", "is not a JSON array")]
    entries: list[dict[str, Any]] = []
    findings: list[Finding] = []
    seen: set[str] = set()
    for i, item in enumerate(doc):
        where = f"{MANIFEST_NAME}[{i}]"
        if not isinstance(item, dict):
            findings.append(Finding(where, "format", "is not a JSON object"))
            continue
        missing = [k for k in MANIFEST_FIELDS if k not in item]
        if missing:
            findings.append(Finding(where, "format", f"lacks {', '.join(missing)}"))
            continue
        name = item["file"]
        if not isinstance(name, str) or name in {MANIFEST_NAME, SIGNATURE_NAME}:
            findings.append(Finding(where, "format", f"names an invalid file {name!r}"))
            continue
        if name in seen:
            findings.append(Finding(name, "manifest", "is listed more than once"))
            continue
        seen.add(name)
        entries.append(item)
    return entries, findings


def verify(path: Path, key: Ed25519PublicKey) -> Report:
    """Check the archive at ``path``: signature, manifest, and every entry's size and sha256.

    Raises OSError if the file cannot be read; everything else is a finding.
    """
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        return Report(0, [Finding("archive", "format", f"not a readable ZIP file ({exc})")])
    with zf:
        names = [i.filename for i in zf.infolist()]
        findings: list[Finding] = []
        duplicates = sorted({n for n in names if names.count(n) > 1})
        findings.extend(Finding(n, "archive", "appears more than once") for n in duplicates)
        findings.extend(
            Finding(required, "presence", "is missing from the archive")
            for required in (MANIFEST_NAME, SIGNATURE_NAME)
            if required not in names
        )
        if any(f.check == "presence" for f in findings):
            return Report(0, findings)
        parts: dict[str, bytes] = {}
        for name in (MANIFEST_NAME, SIGNATURE_NAME):
            try:
                parts[name] = zf.read(name)
            except zipfile.BadZipFile as exc:
                findings.append(Finding(name, "zip crc-32", f"its bytes were changed ({exc})"))
        if len(parts) < 2:
            return Report(0, findings)
        manifest, signature = parts[MANIFEST_NAME], parts[SIGNATURE_NAME]
        try:
            key.verify(signature, manifest)
        except InvalidSignature:
            findings.append(
                Finding(
                    SIGNATURE_NAME,
                    "signature",
                    "does not verify manifest.json with this public key (the manifest was"
                    " changed, or it was signed by another key)",
                )
            )
        try:
            doc = json.loads(manifest)
        except ValueError as exc:
            findings.append(Finding(MANIFEST_NAME, "format", f"is not JSON ({exc})"))
            return Report(0, findings)
        entries, problems = _check_manifest(doc)
        findings.extend(problems)
        listed = {e["file"] for e in entries}
        findings.extend(
            Finding(name, "presence", "is in the archive but not in the manifest")
            for name in names
            if name not in listed and name not in {MANIFEST_NAME, SIGNATURE_NAME}
        )
        for entry in entries:
            name = entry["file"]
            if "error" in entry:
                findings.append(Finding(name, "export", f"flagged at export: {entry['error']}"))
            if name not in names:
                findings.append(
                    Finding(name, "presence", "is in the manifest but not in the archive")
                )
                continue
            try:
                sha, size = _entry_sha256(zf, name)
            except zipfile.BadZipFile as exc:
                findings.append(
                    Finding(name, "zip crc-32", f"the entry's bytes were changed ({exc})")
                )
                continue
            if size != entry["size_bytes"]:
                findings.append(
                    Finding(name, "size", f"{size} bytes, the manifest says {entry['size_bytes']}")
                )
            if sha != entry["sha256"]:
                findings.append(
                    Finding(name, "sha256", f"is {sha}, the manifest says {entry['sha256']}")
                )
        return Report(len(entries), findings)

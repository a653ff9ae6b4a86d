"""One pass over an input file's bytes before DuckDB reads it: what the parser cannot be trusted to notice.

DuckDB's gzip reader does not check a member's CRC-32 and length, so a damaged .gz reads as
garbage rows; its strict CSV parser stops on a file that mixes CRLF and LF line endings; a NUL
byte far into a file is text to it. `scan` reads the whole file once (its SHA-256 for the ledger
comes from the same read), refuses what is not intact text, and counts the line endings and the
longest line; `lf_copy` writes the one-ending copy a file with mixed endings is read from.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from funnelboard.core.errors import UserError

CHUNK = 1 << 20
# DuckDB's default max_line_size: a longer CSV line is quarantined as line_too_long (its raw text
# cut to RAW_KEPT characters), and so is a longer JSON Lines line.
LINE_LIMIT = 2_000_000
RAW_KEPT = 10_000
# A JSON Lines file with a longer line is refused: that is one JSON document, not JSON Lines.
JSONL_LINE_MAX = 64 << 20


@dataclass
class Scan:
    """What one pass over a file found: its SHA-256 and, for text, its line endings and longest line."""

    sha256: str = ""
    lf: int = 0  # line feeds
    crlf: int = 0  # line feeds preceded by a carriage return
    longest: int = 0  # bytes of the longest line that spans two chunks (any other line is shorter than CHUNK)
    longest_line: int = 0  # its line number (1 = the first)
    _run: int = field(default=0, repr=False)  # bytes since the last line feed
    _cr: bool = field(default=False, repr=False)  # the last chunk ended in a carriage return

    @property
    def mixed_endings(self) -> bool:
        """Some lines end in CRLF and others in a bare LF."""
        return 0 < self.crlf < self.lf

    def add(self, chunk: bytes) -> int | None:
        """Count one chunk of text; the line of its first NUL byte, or None when it has none."""
        nul = chunk.find(b"\x00")
        if nul >= 0:
            return self.lf + chunk.count(b"\n", 0, nul) + 1
        self.crlf += chunk.count(b"\r\n") + (1 if self._cr and chunk[:1] == b"\n" else 0)
        self._cr = chunk.endswith(b"\r")
        first = chunk.find(b"\n")
        if first < 0:
            self._run += len(chunk)
            return None
        self._line_ends(self._run + first, self.lf + 1)
        self.lf += chunk.count(b"\n")
        self._run = len(chunk) - chunk.rfind(b"\n") - 1
        return None

    def finish(self) -> None:
        """Count the last line (one without a line feed after it)."""
        self._line_ends(self._run, self.lf + 1)

    def _line_ends(self, length: int, line: int) -> None:
        if length > self.longest:
            self.longest, self.longest_line = length, line


class _Hashing:
    """A binary file that feeds every byte read through it to a digest (for gzip.GzipFile)."""

    def __init__(self, raw: BinaryIO, digest):
        self.raw, self.digest = raw, digest

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data


def scan(path: Path, compression: str | None, what: str, *, text: bool) -> Scan:
    """Read the whole file once: its SHA-256 and, for a text file (CSV, JSON Lines), the gzip
    checksum verified, no NUL byte anywhere and its lines counted; UserError naming the file otherwise."""
    result = Scan()
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as raw:
            hashing = _Hashing(raw, digest)
            stream = gzip.GzipFile(fileobj=hashing, mode="rb") if compression == "gzip" else hashing
            while chunk := stream.read(CHUNK):
                nul = result.add(chunk) if text else None
                if nul is not None:
                    raise UserError(f"{what} '{path}' contains NUL bytes (the first on line {nul:,}): expected text, "
                                    "found binary data.")
            while hashing.read(CHUNK):  # what gzip left unread, if anything: the hash is of every byte
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(unreadable(path, compression, what, exc)) from None
    result.finish()
    result.sha256 = digest.hexdigest()
    return result


def unreadable(path: Path, compression: str | None, what: str, exc: BaseException) -> str:
    """One sentence saying why a file's bytes cannot be read: a damaged gzip file, or the system's reason."""
    damaged = f"{what} '{path}' is a damaged gzip file"
    again = "export or download it again."
    if compression == "gzip" and isinstance(exc, EOFError):
        return f"{damaged}: it ends before its compressed data does (cut off while copying?); {again}"
    if compression == "gzip" and isinstance(exc, zlib.error):
        return f"{damaged}: its compressed data is corrupt ({exc}); {again}"
    if compression == "gzip" and isinstance(exc, gzip.BadGzipFile):
        if "CRC" in str(exc) or "length" in str(exc):
            return f"{damaged}: its data does not match its CRC-32 checksum or length ({exc}); {again}"
        if _starts_as_gzip(path):
            return f"{damaged}: bytes that are not gzip follow its compressed data; {again}"
        return f"{what} '{path}' is not gzip data ({exc}): expected a .gz file, or rename it without .gz."
    reason = getattr(exc, "strerror", None) or str(exc)
    return f"{what} '{path}' cannot be read: {reason}."


def _starts_as_gzip(path: Path) -> bool:
    """The file begins with gzip's magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def lf_copy(path: Path, compression: str | None, what: str) -> tuple[tempfile.TemporaryDirectory, Path]:
    """A copy of a text file whose lines all end in LF (each CRLF made LF), uncompressed, in a temporary
    folder that is deleted with the returned object; lines keep their numbers and their text."""
    scratch = tempfile.TemporaryDirectory(prefix="funnelboard-lf-")
    target = Path(scratch.name) / "lf.csv"
    try:
        with (gzip.open(path, "rb") if compression == "gzip" else open(path, "rb")) as src, open(target, "wb") as out:
            carry = b""
            while chunk := src.read(CHUNK):
                chunk = carry + chunk
                carry = b"\r" if chunk.endswith(b"\r") else b""  # its LF may start the next chunk
                out.write(chunk[: len(chunk) - len(carry)].replace(b"\r\n", b"\n"))
            out.write(carry)
    except (OSError, EOFError, zlib.error) as exc:
        scratch.cleanup()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"{what} '{path}' mixes CRLF and LF line endings, and the copy with one ending it is read "
                        f"from could not be written to {tempfile.gettempdir()}: {reason}.") from None
    return scratch, target

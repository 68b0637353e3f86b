"""Finding frames in a byte stream, with resynchronisation after garbage.

An RS-485 bus delivers bytes, not frames: a reply may arrive in pieces, after line noise, after a
late reply to an earlier request, or with a flipped bit. `FrameReader` buffers what arrives and
hands out only frames that decode cleanly. When a candidate frame fails to decode it drops *one*
byte and searches again, because a real frame may start inside the rejected candidate (noise that
happens to equal a head byte just before a real frame, for instance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from kiosk.hardware.errors import LockBoardError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class FrameSpec(Generic[T_co]):
    """The shape of one kind of fixed-length frame, and how to decode it.

    Attributes:
        name: What the frame is, for error messages ("8A/80 lock reply").
        heads: The byte values a frame of this kind may start with.
        length: The frame's length in bytes, checksum included.
        decode: Turns exactly ``length`` bytes into a value. Must raise a `LockBoardError`
            (`ChecksumError` or `MalformedFrame`) for bytes that are not a valid frame, and
            nothing else.
    """

    name: str
    heads: frozenset[int]
    length: int
    decode: Callable[[bytes], T_co]

    def __post_init__(self) -> None:
        if self.length < 2:
            raise ValueError(f"a frame has at least two bytes, got length {self.length}")
        if not self.heads or any(not 0 <= head <= 0xFF for head in self.heads):
            raise ValueError(f"heads must be non-empty byte values, got {sorted(self.heads)}")


class FrameReader(Generic[T]):
    """Accumulates bytes and yields the decoded frames of one `FrameSpec`.

    Not thread-safe: one reader belongs to one request/response exchange (or one simulator
    thread). Bytes before a head byte are discarded; a candidate that fails to decode costs one
    byte and the search resumes at the next head byte.

    Attributes:
        discarded: Bytes thrown away so far (noise, and first bytes of rejected candidates).
        rejected: Candidate frames that started with a head byte but failed to decode.
        last_error: The decode error of the most recently rejected candidate, if any.
    """

    def __init__(self, spec: FrameSpec[T]) -> None:
        self._spec = spec
        self._buffer = bytearray()
        self.discarded = 0
        self.rejected = 0
        self.last_error: LockBoardError | None = None

    @property
    def spec(self) -> FrameSpec[T]:
        return self._spec

    @property
    def pending(self) -> bytes:
        """Bytes kept for a frame that has started but not finished arriving."""
        return bytes(self._buffer)

    def feed(self, data: bytes) -> list[T]:
        """Adds ``data`` and returns every frame that is now complete, in arrival order."""
        self._buffer.extend(data)
        frames: list[T] = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    def clear(self) -> None:
        """Forgets buffered bytes (counters are kept)."""
        self.discarded += len(self._buffer)
        self._buffer.clear()

    def _next(self) -> T | None:
        spec = self._spec
        buffer = self._buffer
        while True:
            start = next((i for i, byte in enumerate(buffer) if byte in spec.heads), None)
            if start is None:
                self.discarded += len(buffer)
                buffer.clear()
                return None
            if start:
                self.discarded += start
                del buffer[:start]
            if len(buffer) < spec.length:
                return None
            candidate = bytes(buffer[: spec.length])
            try:
                frame = spec.decode(candidate)
            except LockBoardError as error:
                self.rejected += 1
                self.last_error = error
                self.discarded += 1
                del buffer[0]
                continue
            del buffer[: spec.length]
            return frame

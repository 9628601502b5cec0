"""Timed words of a long recording's transcription, grouped into segments and written as plain
text, JSON, SRT or WebVTT.

Segmentation (:func:`group_segments`). Words, sorted by start time, are taken in order; a word
joins the current segment unless

* the silence before it (its start minus the latest end among the segment's words, which is the
  previous word's end unless words overlap) is longer than ``max_pause`` seconds, or
* the segment's text (its words joined by single spaces) would become longer than ``max_chars``
  characters, or
* the segment (first word's start to latest word end) would become longer than ``max_seconds``.

A word that alone exceeds ``max_chars`` or ``max_seconds`` makes a segment of its own; no word is
ever dropped. A segment runs from its first word's start to the latest end of its words.

Formats (:func:`render`):

``text``
    One line per segment, its words separated by single spaces (runs of whitespace inside word
    texts are collapsed), no times; segments without text are skipped. An empty transcription
    gives ``""``.
``json``
    One document ``{"source", "duration", "text", "segments": [{"start", "end", "text",
    "words": [{"text", "start", "end", "confidence"}]}]}``; times are rounded to the millisecond,
    confidences to 3 decimals; segments and words keep their times as given.
``srt``
    Numbered cues from 1, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, the text on one line, or on two lines
    broken at the space nearest the middle when longer than :data:`MAX_LINE` characters; cues are
    separated by a blank line and the file ends with a single newline. ``-->`` inside a word
    (which would read as a timing line) is written ``->``.
``vtt``
    ``WEBVTT``, a blank line, then cues as in SRT without numbers, with ``HH:MM:SS.mmm``
    timestamps and ``&``, ``<``, ``>`` escaped as ``&amp;``, ``&lt;``, ``&gt;`` (so cue text never
    holds ``-->``).

Cue times (SRT, VTT) are whole milliseconds and strictly consistent: each cue starts at least 1 ms
after the previous one (a start that rounds onto or before the previous cue's start is moved
forward), a cue that would end at or before its start is shown for 1 ms, and a cue that would
overlap the next one ends where the next one starts. Segments with no text make no cue.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import List, Optional, Tuple

__all__ = ["Word", "Segment", "FORMATS", "MAX_LINE", "group_segments", "format_timestamp", "render"]

FORMATS = ("text", "json", "srt", "vtt")
MAX_LINE = 42  # characters per subtitle line before the text is broken into two lines

_ARROWS = re.compile(r"-{2,}>")
_VTT_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


@dataclass
class Word:
    """One recognised word and where it was heard."""

    text: str
    start: float  # seconds from the start of the recording
    end: float  # seconds, >= start
    confidence: float  # in [0, 1]


@dataclass
class Segment:
    """Consecutive words shown or stored together."""

    start: float
    end: float
    words: List[Word]

    @property
    def text(self) -> str:
        """The words joined by single spaces."""
        return " ".join(word.text for word in self.words)


def _check_word(index: int, word: Word, previous: Optional[Word]) -> None:
    if not (math.isfinite(word.start) and math.isfinite(word.end)):
        raise ValueError(f"word {index} ({word.text!r}): times must be finite, got {word.start}-{word.end}")
    if word.start < 0:
        raise ValueError(f"word {index} ({word.text!r}): negative start {word.start}")
    if word.end < word.start:
        raise ValueError(f"word {index} ({word.text!r}): end {word.end} is before start {word.start}")
    if not 0.0 <= word.confidence <= 1.0:
        raise ValueError(f"word {index} ({word.text!r}): confidence {word.confidence} is outside [0, 1]")
    if previous is not None and word.start < previous.start:
        raise ValueError(
            f"word {index} ({word.text!r}): starts at {word.start}, before word {index - 1} "
            f"at {previous.start}; words must be sorted by start"
        )


def group_segments(
    words: List[Word], max_pause: float = 0.5, max_chars: int = 84, max_seconds: float = 7.0
) -> List[Segment]:
    """Group ``words`` (sorted by start) into segments, cut at pauses longer than ``max_pause``
    seconds and before a segment's text exceeds ``max_chars`` characters or its span
    ``max_seconds`` seconds (see the module docstring)."""
    if max_pause < 0 or max_chars < 1 or max_seconds <= 0:
        raise ValueError(
            f"need max_pause >= 0, max_chars >= 1 and max_seconds > 0, "
            f"got {max_pause}, {max_chars} and {max_seconds}"
        )
    segments: List[Segment] = []
    current: Optional[Segment] = None
    chars = 0
    for index, word in enumerate(words):
        _check_word(index, word, words[index - 1] if index else None)
        if current is not None:
            end = max(current.end, word.end)
            if (
                word.start - current.end > max_pause
                or chars + 1 + len(word.text) > max_chars
                or end - current.start > max_seconds
            ):
                current = None
            else:
                current.words.append(word)
                current.end = end
                chars += 1 + len(word.text)
        if current is None:
            current = Segment(word.start, word.end, [word])
            chars = len(word.text)
            segments.append(current)
    return segments


def _milliseconds(seconds: float) -> int:
    """``seconds`` rounded to the nearest millisecond (halves up)."""
    return math.floor(seconds * 1000 + 0.5)


def _timestamp(ms: int, separator: str) -> str:
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{ms:03d}"


def format_timestamp(seconds: float, fmt: str) -> str:
    """``seconds`` as an SRT (``HH:MM:SS,mmm``) or VTT (``HH:MM:SS.mmm``) timestamp, rounded to
    the millisecond; hours take as many digits as they need.

    >>> format_timestamp(59.9996, "srt"), format_timestamp(36000.25, "vtt")
    ('00:01:00,000', '10:00:00.250')
    """
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"timestamps are for 'srt' or 'vtt', not {fmt!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a timestamp needs a finite, non-negative time, got {seconds}")
    return _timestamp(_milliseconds(seconds), "," if fmt == "srt" else ".")


def _check_segments(segments: List[Segment]) -> None:
    for index, segment in enumerate(segments):
        if not (math.isfinite(segment.start) and math.isfinite(segment.end)) or segment.start < 0:
            raise ValueError(
                f"segment {index}: needs finite, non-negative times, got {segment.start}-{segment.end}"
            )
        if segment.end < segment.start:
            raise ValueError(f"segment {index}: end {segment.end} is before start {segment.start}")
        if index and segment.start < segments[index - 1].start:
            raise ValueError(
                f"segment {index}: starts before segment {index - 1}; segments must be sorted by start"
            )


def _wrap(text: str) -> List[str]:
    """``text`` on one line, or on two broken at the space nearest the middle if it is longer than
    :data:`MAX_LINE`."""
    spaces = [i for i, char in enumerate(text) if char == " "]
    if len(text) <= MAX_LINE or not spaces:
        return [text]
    cut = min(spaces, key=lambda i: abs(2 * i - (len(text) - 1)))
    return [text[:cut], text[cut + 1 :]]


def _cues(segments: List[Segment]) -> List[Tuple[int, int, str]]:
    """``(start_ms, end_ms, text)`` of the segments with text, made strictly consistent (see the
    module docstring)."""
    cues = []
    for segment in segments:
        text = " ".join(segment.text.split())
        if not text:
            continue
        start = _milliseconds(segment.start)
        if cues:
            start = max(start, cues[-1][0] + 1)
        cues.append((start, max(_milliseconds(segment.end), start + 1), text))
    return [
        (start, min(end, cues[i + 1][0]) if i + 1 < len(cues) else end, text)
        for i, (start, end, text) in enumerate(cues)
    ]


def _render_srt(segments: List[Segment]) -> str:
    blocks = []
    for number, (start, end, text) in enumerate(_cues(segments), 1):
        timing = f"{_timestamp(start, ',')} --> {_timestamp(end, ',')}"
        blocks.append(f"{number}\n{timing}\n" + "\n".join(_wrap(_ARROWS.sub("->", text))) + "\n")
    return "\n".join(blocks)


def _escape_vtt(line: str) -> str:
    for char, entity in _VTT_ESCAPES:
        line = line.replace(char, entity)
    return line


def _render_vtt(segments: List[Segment]) -> str:
    blocks = ["WEBVTT\n"]
    for start, end, text in _cues(segments):
        timing = f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}"
        blocks.append(f"{timing}\n" + "\n".join(_escape_vtt(line) for line in _wrap(text)) + "\n")
    return "\n".join(blocks)


def _seconds(seconds: float) -> float:
    return _milliseconds(seconds) / 1000


def _render_json(segments: List[Segment], source: str, duration: Optional[float]) -> str:
    document = {
        "source": source,
        "duration": None if duration is None else _seconds(duration),
        "text": " ".join(segment.text for segment in segments if segment.text),
        "segments": [
            {
                "start": _seconds(segment.start),
                "end": _seconds(segment.end),
                "text": segment.text,
                "words": [
                    {
                        "text": word.text,
                        "start": _seconds(word.start),
                        "end": _seconds(word.end),
                        "confidence": round(word.confidence, 3),
                    }
                    for word in segment.words
                ],
            }
            for segment in segments
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def render(segments: List[Segment], fmt: str, source: str = "", duration: Optional[float] = None) -> str:
    """``segments`` (sorted by start) written in ``fmt``, one of :data:`FORMATS`; ``source`` and
    ``duration`` (seconds) are recorded in the JSON format only."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    _check_segments(segments)
    if duration is not None and not (math.isfinite(duration) and duration >= 0):
        raise ValueError(f"duration must be finite and non-negative, got {duration}")
    if fmt == "json":
        return _render_json(segments, source, duration)
    if fmt == "srt":
        return _render_srt(segments)
    if fmt == "vtt":
        return _render_vtt(segments)
    lines = [" ".join(segment.text.split()) for segment in segments]
    return "".join(line + "\n" for line in lines if line)

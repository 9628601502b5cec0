"""Segmentation of timed words and their text, JSON, SRT and WebVTT renderings."""

import json
import random
import re

import pytest

from espnet_summarymixing.longform.subtitles import (
    FORMATS,
    MAX_LINE,
    Segment,
    Word,
    format_timestamp,
    group_segments,
    render,
)

VOCABULARY = (
    "the a of speech model encoder summary mixing linear time attention recording transcription "
    "segment subtitle hour minute long-form R&D <unk> x<y a>b -->arrow co-->op"
).split()


def words_at(*spans, text="w", confidence=0.9):
    """A word for each ``(start, end)`` span, named ``text`` + index."""
    return [Word(f"{text}{i}", start, end, confidence) for i, (start, end) in enumerate(spans)]


def speech(seed, count=300):
    """``count`` words with realistic, seeded timings: short gaps, sometimes long pauses, the odd
    zero-length or overlapping word."""
    rng = random.Random(seed)
    words, t = [], rng.uniform(0, 2)
    for _ in range(count):
        duration = rng.choice([0.0, rng.uniform(0.05, 0.8)])
        words.append(Word(rng.choice(VOCABULARY), round(t, 4), round(t + duration, 4), rng.random()))
        t += duration + rng.choice([-0.02, 0.0, rng.uniform(0, 0.3), rng.uniform(0.4, 2.5)])
        t = max(t, words[-1].start)
    return words


def texts(segments):
    return [segment.text for segment in segments]


# ----------------------------------------------------------------------------- grouping


def test_group_empty():
    assert group_segments([]) == []


def test_group_at_pauses_longer_than_max_pause():
    words = words_at((0.0, 0.5), (1.0, 1.5), (2.01, 2.5), (2.6, 3.0))
    segments = group_segments(words, max_pause=0.5)
    # a silence of exactly 0.5 s keeps the words together, 0.51 s splits
    assert texts(segments) == ["w0 w1", "w2 w3"]
    assert (segments[0].start, segments[0].end) == (0.0, 1.5)
    assert (segments[1].start, segments[1].end) == (2.01, 3.0)
    assert [w for s in segments for w in s.words] == words


def test_pause_is_measured_from_the_latest_end():
    # w1 lies inside w0; the silence before w2 is 0.1 s after w0's end, not 1.6 s after w1's
    words = words_at((0.0, 2.0), (0.2, 0.4), (2.1, 2.5))
    assert texts(group_segments(words, max_pause=0.5)) == ["w0 w1 w2"]


def test_group_at_max_chars():
    words = [Word(t, i, i + 0.5, 1.0) for i, t in enumerate(["abc", "de", "fgh", "ij"])]
    # "abc de" is 6 characters: kept at max_chars=6, "abc de fgh" (10) is not
    assert texts(group_segments(words, max_pause=1, max_chars=6)) == ["abc de", "fgh ij"]
    assert texts(group_segments(words, max_pause=1, max_chars=5)) == ["abc", "de", "fgh", "ij"]
    assert texts(group_segments(words, max_pause=1, max_chars=13)) == ["abc de fgh ij"]
    assert texts(group_segments(words, max_pause=1, max_chars=12)) == ["abc de fgh", "ij"]


def test_group_at_max_seconds():
    words = words_at((0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 4.5))
    # a segment may last exactly max_seconds, not longer
    assert texts(group_segments(words, max_seconds=2.0)) == ["w0 w1", "w2 w3", "w4"]
    assert texts(group_segments(words, max_seconds=1.99)) == ["w0", "w1", "w2", "w3 w4"]
    assert texts(group_segments(words, max_seconds=4.5)) == ["w0 w1 w2 w3 w4"]
    # the span counts to the latest end, so a long word ends its segment early
    long_middle = words_at((0.0, 0.5), (0.5, 6.5), (6.5, 7.5))
    assert texts(group_segments(long_middle, max_seconds=7.0)) == ["w0 w1", "w2"]


@pytest.mark.parametrize(
    "word, limits",
    [
        (Word("x" * 100, 1.0, 1.5, 0.5), dict(max_chars=84)),
        (Word("long", 1.0, 12.0, 0.5), dict(max_seconds=7.0)),
    ],
    ids=["chars", "seconds"],
)
def test_overlong_word_makes_its_own_segment(word, limits):
    words = [Word("before", 0.5, 0.9, 1.0), word, Word("after", 12.1, 12.4, 1.0)]
    segments = group_segments(words, max_pause=1.0, **limits)
    assert [s.words for s in segments] == [[words[0]], [word], [words[2]]]
    assert (segments[1].start, segments[1].end) == (word.start, word.end)


def test_overlong_word_alone():
    word = Word("y" * 200, 0.0, 30.0, 1.0)
    assert group_segments([word]) == [Segment(0.0, 30.0, [word])]


@pytest.mark.parametrize("seed", range(3))
def test_segments_respect_all_limits_on_realistic_input(seed):
    limits = dict(max_pause=0.5, max_chars=40, max_seconds=5.0)
    words = speech(seed)
    segments = group_segments(words, **limits)
    assert [w for s in segments for w in s.words] == words
    for segment in segments:
        assert segment.start == segment.words[0].start
        assert segment.end == max(w.end for w in segment.words)
        if len(segment.words) > 1:
            assert len(segment.text) <= limits["max_chars"]
            assert segment.end - segment.start <= limits["max_seconds"]
        for i, word in enumerate(segment.words[1:], 1):
            assert word.start - max(w.end for w in segment.words[:i]) <= limits["max_pause"]
    # each segment ends only because its successor's first word broke a rule
    for segment, following in zip(segments, segments[1:]):
        word = following.words[0]
        assert (
            word.start - segment.end > limits["max_pause"]
            or len(segment.text) + 1 + len(word.text) > limits["max_chars"]
            or max(segment.end, word.end) - segment.start > limits["max_seconds"]
        )


def test_segment_text_joins_words_with_single_spaces():
    assert Segment(0, 1, [Word("hello", 0, 0.5, 1), Word("world", 0.5, 1, 1)]).text == "hello world"
    assert Segment(0, 0, []).text == ""


# ----------------------------------------------------------------------------- grouping errors


@pytest.mark.parametrize(
    "bad, message",
    [
        (Word("bad", 2.0, 1.5, 0.5), r"word 2 \('bad'\): end 1.5 is before start 2.0"),
        (Word("bad", -0.1, 1.0, 0.5), r"word 2 \('bad'\): negative start -0.1"),
        (Word("bad", 2.0, 2.5, 1.01), r"word 2 \('bad'\): confidence 1.01 is outside \[0, 1\]"),
        (Word("bad", 2.0, 2.5, -0.2), r"word 2 \('bad'\): confidence -0.2 is outside \[0, 1\]"),
        (Word("bad", 2.0, 2.5, float("nan")), r"word 2 \('bad'\): confidence nan is outside"),
        (Word("bad", 0.9, 2.5, 0.5), r"word 2 \('bad'\): starts at 0.9, before word 1 at 1.0; .*sorted"),
        (Word("bad", 2.0, float("inf"), 0.5), r"word 2 \('bad'\): times must be finite"),
    ],
    ids=["end-before-start", "negative-start", "confidence-high", "confidence-low", "confidence-nan",
         "unsorted", "infinite"],
)
def test_group_rejects_bad_words_naming_the_index(bad, message):
    words = [Word("ok", 0.0, 0.5, 0.5), Word("fine", 1.0, 1.5, 0.5), bad, Word("later", 3.0, 3.5, 0.5)]
    with pytest.raises(ValueError, match=message):
        group_segments(words)


def test_group_accepts_boundary_values():
    words = [Word("a", 0.0, 0.0, 0.0), Word("b", 0.0, 0.0, 1.0), Word("c", 0.0, 1.0, 0.5)]
    assert texts(group_segments(words)) == ["a b c"]


@pytest.mark.parametrize("limits", [dict(max_pause=-1), dict(max_chars=0), dict(max_seconds=0)])
def test_group_rejects_bad_limits(limits):
    with pytest.raises(ValueError, match="max_pause >= 0, max_chars >= 1 and max_seconds > 0"):
        group_segments([], **limits)


# ----------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "seconds, srt",
    [
        (0, "00:00:00,000"),
        (1.5, "00:00:01,500"),
        (61.001, "00:01:01,001"),
        (0.0004, "00:00:00,000"),
        (0.0006, "00:00:00,001"),
        (59.9996, "00:01:00,000"),  # rounding carries into the minutes
        (3599.9996, "01:00:00,000"),  # ... and into the hours
        (86399.9999, "24:00:00,000"),
        (9 * 3600 + 59 * 60 + 59.999, "09:59:59,999"),
        (36000, "10:00:00,000"),
        (36000 + 3 * 60 + 4.5, "10:03:04,500"),
        (360000 + 0.25, "100:00:00,250"),
    ],
)
def test_format_timestamp(seconds, srt):
    assert format_timestamp(seconds, "srt") == srt
    assert format_timestamp(seconds, "vtt") == srt.replace(",", ".")


@pytest.mark.parametrize("seconds", [-0.001, -5, float("nan"), float("inf")])
def test_format_timestamp_rejects_negative_and_non_finite(seconds):
    with pytest.raises(ValueError, match="finite, non-negative"):
        format_timestamp(seconds, "srt")


@pytest.mark.parametrize("fmt", ["json", "text", "SRT", ""])
def test_format_timestamp_rejects_other_formats(fmt):
    with pytest.raises(ValueError, match="'srt' or 'vtt'"):
        format_timestamp(1.0, fmt)


# ----------------------------------------------------------------------------- render: shared

SRT_TIME = r"\d{2,}:[0-5]\d:[0-5]\d,\d{3}"
VTT_TIME = r"\d{2,}:[0-5]\d:[0-5]\d\.\d{3}"
SRT_CUE = rf"(\d+)\n({SRT_TIME}) --> ({SRT_TIME})\n((?:[^\n]+\n){{1,2}})"
VTT_CUE = rf"({VTT_TIME}) --> ({VTT_TIME})\n((?:[^\n]+\n){{1,2}})"


def to_ms(stamp):
    hours, minutes, rest = re.split(r":", stamp)
    seconds, ms = re.split(r"[,.]", rest)
    return ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + int(ms)


def srt_cues(document):
    """``(number, start_ms, end_ms, lines)`` of an SRT document, checking its whole structure."""
    assert re.fullmatch(rf"{SRT_CUE}(?:\n{SRT_CUE})*", document), document
    return [
        (int(m[1]), to_ms(m[2]), to_ms(m[3]), m[4].rstrip("\n").split("\n"))
        for m in re.finditer(SRT_CUE, document)
    ]


def vtt_cues(document):
    """``(start_ms, end_ms, lines)`` of a WebVTT document, checking its whole structure."""
    assert document.startswith("WEBVTT\n\n") or document == "WEBVTT\n"
    body = document[len("WEBVTT\n\n"):]
    assert body == "" or re.fullmatch(rf"{VTT_CUE}(?:\n{VTT_CUE})*", body), document
    return [(to_ms(m[1]), to_ms(m[2]), m[3].rstrip("\n").split("\n")) for m in re.finditer(VTT_CUE, body)]


def check_timing(cues):
    """Each cue ends after it starts and no later than the next one starts."""
    for i, (start, end) in enumerate(cues):
        assert end > start, (i, start, end)
        if i + 1 < len(cues):
            assert end <= cues[i + 1][0], (i, end, cues[i + 1])


def unescape_vtt(line):
    return line.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_render_rejects_unknown_format():
    message = r"unknown format 'ass'; expected one of \('text', 'json', 'srt', 'vtt'\)"
    with pytest.raises(ValueError, match=message):
        render([], "ass")
    assert FORMATS == ("text", "json", "srt", "vtt")


@pytest.mark.parametrize(
    "segments, message",
    [
        ([Segment(2.0, 1.0, [])], "segment 0: end 1.0 is before start 2.0"),
        ([Segment(-1.0, 1.0, [])], "segment 0: needs finite, non-negative times"),
        ([Segment(2.0, 3.0, []), Segment(1.0, 4.0, [])], "segment 1: starts before segment 0"),
    ],
)
def test_render_rejects_inconsistent_segments(segments, message):
    for fmt in FORMATS:
        with pytest.raises(ValueError, match=message):
            render(segments, fmt)


def test_render_empty_transcription():
    assert render([], "text") == ""
    assert render([], "srt") == ""
    assert render([], "vtt") == "WEBVTT\n"
    assert json.loads(render([], "json", source="a.wav", duration=3.0)) == {
        "source": "a.wav", "duration": 3.0, "text": "", "segments": []
    }


def test_render_text():
    segments = group_segments(words_at((0, 1), (1, 2), (5, 6)), max_pause=0.5)
    assert render(segments, "text") == "w0 w1\nw2\n"
    odd = [Segment(0, 1, [Word("new\nline", 0, 1, 1)]), Segment(1, 2, [Word(" ", 1, 2, 1)])]
    assert render(odd, "text") == "new line\n"


# ----------------------------------------------------------------------------- SRT


def test_srt_structure():
    segments = group_segments(speech(seed=2), max_chars=84, max_seconds=7.0)
    document = render(segments, "srt")
    assert document.endswith("\n") and not document.endswith("\n\n")
    cues = srt_cues(document)
    assert [number for number, *_ in cues] == list(range(1, len(segments) + 1))
    check_timing([(start, end) for _, start, end, _ in cues])
    for i, ((_, start, end, lines), segment) in enumerate(zip(cues, segments)):
        # times are the segment's, to the millisecond, unless moved to keep the cues in order
        previous_start = cues[i - 1][1] if i else -1
        next_start = cues[i + 1][1] if i + 1 < len(cues) else float("inf")
        assert abs(start - segment.start * 1000) <= 0.5 + 1e-6 or (
            start == previous_start + 1 and segment.start * 1000 <= previous_start + 0.5 + 1e-6
        )
        rounded_end = segment.end * 1000
        assert min(rounded_end - 0.5 - 1e-6, next_start) <= end <= max(rounded_end + 0.5 + 1e-6, start + 1)
        assert " ".join(lines) == re.sub(r"-{2,}>", "->", segment.text)
        assert all("-->" not in line for line in lines)
        if len(segment.text) <= 2 * MAX_LINE:
            # a break into two lines of at most MAX_LINE exists whenever any space allows it
            spaces = [i for i, c in enumerate(segment.text) if c == " "]
            if any(len(segment.text) - MAX_LINE - 1 <= i <= MAX_LINE for i in spaces):
                assert all(len(line) <= MAX_LINE for line in lines), lines


def test_srt_parsed_by_srt_package():
    srt = pytest.importorskip("srt")
    segments = group_segments(speech(seed=3))
    document = render(segments, "srt")
    parsed = list(srt.parse(document))
    assert len(parsed) == len(segments)
    # srt composes with a blank line after the last cue too
    assert srt.compose(parsed, reindex=False) == document + "\n"
    for subtitle, (number, start, end, lines) in zip(parsed, srt_cues(document)):
        assert subtitle.index == number
        assert subtitle.start.total_seconds() * 1000 == pytest.approx(start)
        assert subtitle.end.total_seconds() * 1000 == pytest.approx(end)
        assert subtitle.content == "\n".join(lines)


def test_srt_wrapping():
    short = "a" * 20 + " " + "b" * 21  # 42 characters: one line
    long = "one two three four five six seven eight nine ten eleven"  # 56 characters
    word = "z" * 60  # no space to break at
    segments = [Segment(i, i + 0.5, [Word(t, i, i + 0.5, 1)]) for i, t in enumerate([short, long, word])]
    cues = srt_cues(render(segments, "srt"))
    assert cues[0][3] == [short]
    # the break is at the space nearest the middle (character 27.5)
    assert cues[1][3] == ["one two three four five six", "seven eight nine ten eleven"]
    assert cues[2][3] == [word]


def test_srt_times_made_consistent():
    segments = [
        Segment(1.0, 1.0, [Word("instant", 1.0, 1.0, 1)]),  # zero length: shown for 1 ms
        Segment(1.0, 3.0, [Word("same", 1.0, 3.0, 1)]),  # same start: moved 1 ms on
        Segment(2.5, 4.0, [Word("overlap", 2.5, 4.0, 1)]),  # the previous cue is clipped to 2.5 s
        Segment(5.0, 5.0002, [Word("tiny", 5.0, 5.0002, 1)]),  # rounds to zero length
        Segment(6.0, 7.0, []),  # no text: no cue
        Segment(8.0, 9.0, [Word("last", 8.0, 9.0, 1)]),
    ]
    cues = srt_cues(render(segments, "srt"))
    assert [(n, s, e, lines) for n, s, e, lines in cues] == [
        (1, 1000, 1001, ["instant"]),
        (2, 1001, 2500, ["same"]),
        (3, 2500, 4000, ["overlap"]),
        (4, 5000, 5001, ["tiny"]),
        (5, 8000, 9000, ["last"]),
    ]


def test_cue_text_whitespace_collapsed():
    segments = [
        Segment(0, 1, [Word("new\n\nline", 0, 0.5, 1), Word("tab\there", 0.5, 1, 1)]),
        Segment(1, 2, [Word(" ", 1, 2, 1), Word("\n", 1, 2, 1)]),  # blank: no cue
        Segment(2, 3, [Word("last", 2, 3, 1)]),
    ]
    assert render(segments, "srt") == (
        "1\n00:00:00,000 --> 00:00:01,000\nnew line tab here\n\n2\n00:00:02,000 --> 00:00:03,000\nlast\n"
    )
    assert render(segments, "vtt") == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nnew line tab here\n\n00:00:02.000 --> 00:00:03.000\nlast\n"
    )


def test_srt_arrow_in_text():
    segments = [Segment(0, 1, [Word("a-->b", 0, 0.5, 1), Word("c--->d", 0.5, 1, 1)])]
    assert render(segments, "srt") == "1\n00:00:00,000 --> 00:00:01,000\na->b c->d\n"


def test_cues_monotone_on_degenerate_words():
    # many zero-length words at the same instant, split by max_chars into segments with equal starts
    words = [Word(f"word{i}", 10.0, 10.0, 1.0) for i in range(40)] + [Word("end", 10.0, 10.4, 1.0)]
    segments = group_segments(words, max_chars=20)
    assert len({s.start for s in segments}) == 1 and len(segments) > 5
    srt_timing = [(s, e) for _, s, e, _ in srt_cues(render(segments, "srt"))]
    vtt_timing = [(s, e) for s, e, _ in vtt_cues(render(segments, "vtt"))]
    assert srt_timing == vtt_timing and len(srt_timing) == len(segments)
    check_timing(srt_timing)
    assert srt_timing[0][0] == 10000


@pytest.mark.parametrize("seed", range(5))
def test_cues_monotone_and_non_overlapping(seed):
    segments = group_segments(speech(seed, count=200), max_pause=0.3, max_chars=30, max_seconds=3.0)
    timing = [(start, end) for _, start, end, _ in srt_cues(render(segments, "srt"))]
    check_timing(timing)
    assert timing == [(start, end) for start, end, _ in vtt_cues(render(segments, "vtt"))]


# ----------------------------------------------------------------------------- WebVTT


def test_vtt_structure_and_escaping():
    spoken = ["R&D", "x<y", "a>b", "-->", "&amp;"]
    words = [Word(t, i * 0.5, i * 0.5 + 0.4, 1.0) for i, t in enumerate(spoken)]
    segments = group_segments(words)
    document = render(segments, "vtt")
    assert document == "WEBVTT\n\n00:00:00.000 --> 00:00:02.400\nR&amp;D x&lt;y a&gt;b --&gt; &amp;amp;\n"
    for _, _, lines in vtt_cues(document):
        for line in lines:
            assert "-->" not in line and "<" not in line and ">" not in line
            assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", line), line


def test_vtt_structure_on_realistic_input():
    segments = group_segments(speech(seed=4))
    document = render(segments, "vtt")
    assert document.endswith("\n") and not document.endswith("\n\n")
    cues = vtt_cues(document)
    assert len(cues) == len(segments)
    check_timing([(start, end) for start, end, _ in cues])
    for (_, _, lines), segment in zip(cues, segments):
        assert " ".join(unescape_vtt(line) for line in lines) == segment.text
        assert all("-->" not in line for line in lines)
        assert len(lines) <= 2


def test_vtt_parsed_by_webvtt_py():
    webvtt = pytest.importorskip("webvtt")
    segments = group_segments(speech(seed=5))
    document = render(segments, "vtt")
    captions = list(webvtt.from_string(document))
    cues = vtt_cues(document)
    assert len(captions) == len(cues) == len(segments)
    for caption, (start, end, lines) in zip(captions, cues):
        assert to_ms(caption.start) == start and to_ms(caption.end) == end
        assert caption.raw_text == "\n".join(lines)


# ----------------------------------------------------------------------------- JSON


def test_json_round_trip():
    words = [
        Word("hello", 0.12345, 0.5004, 0.98765),
        Word("there", 0.6, 0.9996, 1.0),
        Word("again", 3.0, 3.25, 0.0),
    ]
    document = render(group_segments(words), "json", source="talk.flac", duration=3.99951)
    assert document.endswith("}\n")
    assert json.loads(document) == {
        "source": "talk.flac",
        "duration": 4.0,
        "text": "hello there again",
        "segments": [
            {
                "start": 0.123,
                "end": 1.0,
                "text": "hello there",
                "words": [
                    {"text": "hello", "start": 0.123, "end": 0.5, "confidence": 0.988},
                    {"text": "there", "start": 0.6, "end": 1.0, "confidence": 1.0},
                ],
            },
            {
                "start": 3.0,
                "end": 3.25,
                "text": "again",
                "words": [{"text": "again", "start": 3.0, "end": 3.25, "confidence": 0.0}],
            },
        ],
    }


def test_json_keeps_unicode_and_null_duration():
    segments = group_segments([Word("größe <ß> & \"q\"", 0, 1, 0.5)])
    document = render(segments, "json")
    assert "größe" in document
    loaded = json.loads(document)
    assert loaded["duration"] is None and loaded["source"] == ""
    assert loaded["text"] == loaded["segments"][0]["words"][0]["text"] == "größe <ß> & \"q\""


def test_json_times_monotone_and_words_inside_segments():
    words = speech(seed=6)
    document = json.loads(render(group_segments(words), "json", source="x", duration=1000.0))
    flat = [w for s in document["segments"] for w in s["words"]]
    assert [w["text"] for w in flat] == [w.text for w in words]
    assert document["text"] == " ".join(w.text for w in words)
    starts = [s["start"] for s in document["segments"]]
    assert starts == sorted(starts)
    for segment in document["segments"]:
        assert segment["start"] <= segment["end"]
        assert segment["text"] == " ".join(w["text"] for w in segment["words"])
        word_starts = [w["start"] for w in segment["words"]]
        assert word_starts == sorted(word_starts) and word_starts[0] == segment["start"]
        for word in segment["words"]:
            assert segment["start"] <= word["start"] <= word["end"] <= segment["end"]
            assert 0 <= word["confidence"] <= 1
            for key in ("start", "end", "confidence"):
                assert round(word[key], 3) == word[key]


@pytest.mark.parametrize("duration", [-1.0, float("nan"), float("inf")])
def test_render_rejects_bad_duration(duration):
    with pytest.raises(ValueError, match="duration must be finite and non-negative"):
        render([], "json", duration=duration)
